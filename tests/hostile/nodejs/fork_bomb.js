// SPDX-License-Identifier: MIT
// Fork bomb, node style (node itself cannot fork): for event.seconds (1) spawn child processes
// as fast as possible, counting them, their failures (EAGAIN once pids_max is reached: node's
// own threads count too) and the most processes seen in the namespace; then kill them all and
// wait for them. pids_max must stop it. {"ok","errno","error","forked","failed","max_procs",
// "reaped","left"} as the other runtimes' bombs.
'use strict';
const { spawn } = require('child_process');
const os = require('os');
const { nprocs } = require('./hostile_common');

exports.handler = async (event) => {
    if (process.pid !== 1 || process.getuid() === 0)
        return { ok: false, errno: 1, error: 'refused: not sandboxed' };
    const seconds = Number((event || {}).seconds ?? 1);
    const kids = new Set();
    let forked = 0, failed = 0, lastErrno = 0, lastError = '', maxProcs = 1, reaped = 0;
    const deadline = Date.now() + seconds * 1000;
    while (Date.now() < deadline) {
        const c = spawn('/bin/sleep', ['30'], { stdio: 'ignore' });
        c.on('error', (e) => {
            failed++;
            lastErrno = Math.abs(e.errno) || os.constants.errno[e.code] || 0;
            lastError = e.code || e.message;
        });
        if (c.pid) {
            forked++;
            kids.add(c);
            c.on('exit', () => {
                kids.delete(c);
                reaped++;
            });
        }
        maxProcs = Math.max(maxProcs, nprocs());
        await new Promise((r) => setImmediate(r));
        if (!c.pid)
            await new Promise((r) => setTimeout(r, 2));
    }
    for (const c of kids)
        c.kill('SIGKILL');
    while (kids.size)
        await new Promise((r) => setTimeout(r, 5));
    return { ok: lastErrno === 0, errno: lastErrno, error: lastError, forked, failed,
             max_procs: maxProcs, reaped, left: nprocs() };
};
