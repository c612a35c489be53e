// spore's nodejs example: unmodified AWS Lambda handlers for Node.js (CommonJS).
//
// Deploy with handler "index.hello" (or index.echo, ...). Handlers:
//   hello     {"name": N} -> {"message": "hello, N", "function_version", "request_id"}
//   echo      returns the event
//   noop      returns undefined (null)
//   fail      throws an Error
//   callback  the callback style: (event, context, callback)
//   sleep     {"seconds": S} waits S seconds
//   crash     {"code": N} ends the instance with process.exit(N)
//   log       {"lines": N} writes N lines with console.log and N with console.error
//   context   the context's fields and the function's environment
// esm.mjs has the same hello as an ES module (handler "esm.hello").
'use strict';

exports.hello = async (event, context) => {
    const name = event && typeof event === 'object' && event.name ? event.name : 'world';
    return {
        message: `hello, ${name}`,
        function_version: context.functionVersion,
        request_id: context.awsRequestId,
    };
};

exports.echo = async (event) => event;

exports.noop = async () => undefined;

exports.fail = async () => {
    throw new Error('something went wrong');
};

exports.callback = (event, context, callback) => {
    setImmediate(() => callback(null, { message: 'called back', event }));
};

exports.sleep = async (event) => {
    const seconds = Number((event || {}).seconds ?? 1);
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    return { slept: seconds };
};

exports.crash = async (event) => {
    process.exit(Number((event || {}).code ?? 3));
};

exports.log = async (event, context) => {
    const lines = Number((event || {}).lines ?? 2);
    for (let i = 0; i < lines; i++) {
        console.log(`stdout line ${i} of ${context.awsRequestId}`);
        console.error(`stderr line ${i} of ${context.awsRequestId}`);
    }
    return { lines };
};

exports.context = async (event, context) => {
    const keys = (event || {}).env || [];
    return {
        functionName: context.functionName,
        functionVersion: context.functionVersion,
        invokedFunctionArn: context.invokedFunctionArn,
        memoryLimitInMB: context.memoryLimitInMB,
        awsRequestId: context.awsRequestId,
        logGroupName: context.logGroupName,
        logStreamName: context.logStreamName,
        remainingMs: context.getRemainingTimeInMillis(),
        cwd: process.cwd(),
        env: Object.fromEntries(keys.map((k) => [k, process.env[k] ?? null])),
        pid: process.pid,
        uid: process.getuid(),
        node: process.version,
    };
};
