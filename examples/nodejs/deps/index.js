// A nodejs function with an npm dependency (package.json + package-lock.json; no node_modules
// in the package: spored runs `npm ci` at deploy, in a sandbox, and caches the result).
const ms = require('ms');

exports.handler = async (event) => {
  const millis = Number((event && event.ms) ?? 90061000);
  return { ms: millis, human: ms(millis, { long: true }), ms_version: require('ms/package.json').version };
};
