// SPDX-License-Identifier: MIT
// What the nodejs attacks share (the twin of ../python3/hostile_common.py): results are
// {"what", "ok", "errno", "error"} (errno positive, as in C), plus "data" for what could be read.
'use strict';
const fs = require('fs');
const os = require('os');

function errnoOf(e) {
    if (typeof e.errno === 'number' && e.errno !== 0)
        return Math.abs(e.errno);
    return os.constants.errno[e.code] || 0;
}

exports.result = (what, e) => e
    ? { what, ok: false, errno: errnoOf(e), error: e.message }
    : { what, ok: true, errno: 0, error: '' };

exports.tryRead = (path) => {
    try {
        let data;
        if (fs.statSync(path).isDirectory()) {
            data = fs.readdirSync(path).sort().slice(0, 64).join('\n');
        } else {
            const fd = fs.openSync(path, 'r');
            const buf = Buffer.alloc(65536);
            const n = fs.readSync(fd, buf);
            fs.closeSync(fd);
            data = buf.subarray(0, n).toString('utf8').replace(/\0/g, '\n');
        }
        return { ...exports.result(path, null), data };
    } catch (e) {
        return exports.result(path, e);
    }
};

exports.eachPath = (event, defaults, fn) =>
    ({ results: ((event && event.paths) || defaults).map(fn) });

exports.nprocs = () => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).length;
