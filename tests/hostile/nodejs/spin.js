// SPDX-License-Identifier: MIT
// Spin past timeout_ms when event.spin is true, with a spinning child process too (event.child):
// the timeout must kill the whole instance. Otherwise answers {"ok": true} at once.
'use strict';
const { spawn } = require('child_process');

exports.handler = async (event) => {
    event = event || {};
    if (!event.spin)
        return { ok: true, errno: 0, error: '' };
    if (event.child)
        spawn('/bin/sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
    let n = 0;
    for (;;)
        n++;
};
