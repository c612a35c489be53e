// SPDX-License-Identifier: MIT
// spore's Node.js runtime: the main script of every node process that spore-zygote-nodejs
// starts ahead of demand (src/runtimes/runtime-nodejs.c; docs/RUNTIMES.md). It loads what
// most functions need, waits in the addon until the spare becomes an instance, then speaks the
// instance protocol of src/proto.h on fd 3: INST_INIT loads the handler "file.export" (CommonJS
// or ES module), each INST_INVOKE calls it with the AWS Lambda signature, async (event,
// context) or (event, context, callback). Frames are struct proto_frame {u32 type, u32 len}
// in the host's byte order (little-endian on every target spore builds for).
'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const { pathToFileURL } = require('url');

const INST_INIT = 1;
const INST_READY = 2;
const INST_INIT_ERROR = 3;
const INST_INVOKE = 4;
const INST_RESULT = 5;
const INST_ERROR = 6;
const MAX_FRAME = 8 * 1024 * 1024; // PROTO_MAX_FRAME
const RESPONSE_MAX = 6 * 1024 * 1024; // as AWS
const INVOKE_HEADER = 48; // struct proto_invoke {i64 deadline_ms; char request_id[40]}
const CHAN_FD = 3;
const HANDOVER_FD = 3;
const SELF = __filename;

const sandboxed = process.env.SPORE_NODEJS_SANDBOX === '1';
const fresh = process.env.SPORE_NODEJS_FRESH === '1'; // an instance is waiting already

// ---- errors ---------------------------------------------------------------------------------

// The stack as lines, without this file's frames (Lambda leaves out its runtime's too).
function stackLines(e) {
    if (!(e instanceof Error) || typeof e.stack !== 'string')
        return [];
    return e.stack.split('\n').filter((l) => !l.includes(SELF));
}

function errorObject(type, message, stack) {
    return { errorType: type, errorMessage: message, stackTrace: stack || [] };
}

// What a handler threw, rejected with or passed to its callback, as Lambda reports it.
function toErrorObject(e) {
    if (e instanceof Error)
        return errorObject(e.name || 'Error', String(e.message), stackLines(e));
    if (typeof e === 'string')
        return errorObject('string', e);
    let msg;
    try {
        msg = JSON.stringify(e);
    } catch (_) {
        msg = undefined;
    }
    return errorObject(e === null ? 'null' : typeof e, msg === undefined ? String(e) : msg);
}

class LoadError extends Error {
    constructor(type, message, stack) {
        super(message);
        this.type = type;
        this.trace = stack;
    }
}

// ---- the channel ----------------------------------------------------------------------------

let chan = null;
const pending = [];
let pendingLen = 0;
let frameType = -1;
let frameLen = -1;

// Takes n bytes off the front of the pending chunks (copying only when they span chunks).
function takeBytes(n) {
    if (n === 0)
        return Buffer.alloc(0);
    const first = pending[0];
    if (first.length >= n) {
        const out = first.subarray(0, n);
        if (first.length === n)
            pending.shift();
        else
            pending[0] = first.subarray(n);
        pendingLen -= n;
        return out;
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
        const c = pending[0];
        const k = Math.min(c.length, n - off);
        c.copy(out, off, 0, k);
        off += k;
        if (k === c.length)
            pending.shift();
        else
            pending[0] = c.subarray(k);
    }
    pendingLen -= n;
    return out;
}

function onData(chunk) {
    pending.push(chunk);
    pendingLen += chunk.length;
    for (;;) {
        if (frameType < 0) {
            if (pendingLen < 8)
                return;
            const h = takeBytes(8);
            frameType = h.readUInt32LE(0);
            frameLen = h.readUInt32LE(4);
            if (frameLen > MAX_FRAME) {
                process.stderr.write('spore: frame too large (' + frameLen + ' bytes)\n');
                process.exit(2);
            }
        }
        if (pendingLen < frameLen)
            return;
        const type = frameType, payload = takeBytes(frameLen);
        frameType = frameLen = -1;
        onFrame(type, payload);
    }
}

function send(type, payload) {
    const body = payload === undefined ? Buffer.alloc(0)
        : Buffer.isBuffer(payload) ? payload : Buffer.from(payload, 'utf8');
    const h = Buffer.allocUnsafe(8);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(body.length, 4);
    chan.cork();
    chan.write(h);
    if (body.length)
        chan.write(body);
    chan.uncork();
}

function sendError(type, obj) {
    send(type, JSON.stringify(obj));
}

// Ends the instance once what was written has reached spored.
function exitAfterWrites(code) {
    process.exitCode = code;
    if (!chan || chan.destroyed) {
        process.exit(code);
        return;
    }
    chan.end(() => process.exit(code));
    setTimeout(() => process.exit(code), 1000).unref();
}

// ---- INST_INIT ------------------------------------------------------------------------------

const fn = {
    handler: null, // the function
    name: '',
    version: '$LATEST',
    arn: '',
    memory: '128',
    group: '',
    stream: '',
    taskRoot: '',
};
let state = 'init'; // 'init' | 'loading' | 'ready'

function setupEnv(env, init, taskRoot) {
    if (env !== undefined && (env === null || typeof env !== 'object' || Array.isArray(env)))
        throw new LoadError('Runtime.InvalidInit', 'env: must be an object');
    const want = { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', TZ: ':UTC' };
    for (const [k, v] of Object.entries(env || {})) {
        if (!k || k.includes('=') || k.includes('\0') || typeof v !== 'string' || v.includes('\0'))
            throw new LoadError('Runtime.InvalidInit', 'env.' + k + ': must be a string variable');
        want[k] = v;
    }
    // Only what changes: a new TZ makes V8 and ICU reload the time zone (about a millisecond),
    // and the spare started with this one.
    for (const k of Object.keys(process.env))
        if (!Object.prototype.hasOwnProperty.call(want, k))
            delete process.env[k];
    for (const [k, v] of Object.entries(want))
        if (process.env[k] !== v)
            process.env[k] = v;
    const fixed = {
        AWS_LAMBDA_FUNCTION_NAME: fn.name,
        AWS_LAMBDA_FUNCTION_VERSION: fn.version,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: fn.memory,
        AWS_LAMBDA_LOG_GROUP_NAME: fn.group,
        AWS_LAMBDA_LOG_STREAM_NAME: fn.stream,
        _HANDLER: init.handler,
        LAMBDA_TASK_ROOT: taskRoot,
        LAMBDA_RUNTIME_DIR: path.dirname(SELF),
    };
    for (const [k, v] of Object.entries(fixed))
        process.env[k] = v;
}

function isFile(p) {
    try {
        const st = fs.statSync(p, { throwIfNoEntry: false });
        return st !== undefined && st.isFile();
    } catch (_) {
        return false;
    }
}

// "type": "module" in the nearest package.json at or above dir, within the code.
function packageIsModule(dir, root) {
    for (;;) {
        const pj = path.join(dir, 'package.json');
        if (isFile(pj)) {
            try {
                const j = JSON.parse(fs.readFileSync(pj, 'utf8'));
                return j !== null && typeof j === 'object' && j.type === 'module';
            } catch (_) {
                return false; // node refuses it too, when it loads the module
            }
        }
        if (dir === root || dir === path.dirname(dir))
            return false;
        dir = path.dirname(dir);
    }
}

function importError(e, modulePart) {
    if (e instanceof SyntaxError)
        return new LoadError('Runtime.UserCodeSyntaxError', String(e), stackLines(e));
    if (e && (e.code === 'MODULE_NOT_FOUND' || e.code === 'ERR_MODULE_NOT_FOUND'))
        return new LoadError('Runtime.ImportModuleError',
                             "Error: Cannot find module '" + modulePart + "': " + e.message,
                             stackLines(e));
    if (e instanceof Error)
        return new LoadError(e.name || 'Error', e.message, stackLines(e));
    return new LoadError('Error', String(e), []);
}

// As Lambda's Node.js runtime: "dir/file.export.nested" is module "dir/file", export
// "export.nested"; the module is dir/file itself, then .js (CommonJS unless package.json says
// "type": "module"), .mjs (ES module), .cjs (CommonJS).
async function loadHandler(handler, root) {
    const slash = handler.lastIndexOf('/');
    const dot = handler.indexOf('.', slash + 1);
    if (dot <= slash + 1 || dot === handler.length - 1)
        throw new LoadError('Runtime.MalformedHandlerName', "Bad handler '" + handler + "'");
    const modulePart = handler.slice(0, dot);
    const exportPath = handler.slice(dot + 1).split('.');
    const base = path.resolve(root, modulePart);
    if (path.isAbsolute(modulePart) || !base.startsWith(root + '/') ||
        exportPath.some((p) => p === ''))
        throw new LoadError('Runtime.MalformedHandlerName', "Bad handler '" + handler + "'");

    let mod;
    try {
        if (isFile(base))
            mod = require(base);
        else if (isFile(base + '.js'))
            mod = packageIsModule(path.dirname(base), root)
                ? await import(pathToFileURL(base + '.js').href) : require(base + '.js');
        else if (isFile(base + '.mjs'))
            mod = await import(pathToFileURL(base + '.mjs').href);
        else if (isFile(base + '.cjs'))
            mod = require(base + '.cjs');
        else
            throw new LoadError('Runtime.ImportModuleError',
                                "Error: Cannot find module '" + modulePart + "'", []);
    } catch (e) {
        throw e instanceof LoadError ? e : importError(e, modulePart);
    }
    let f = mod;
    for (const p of exportPath)
        f = f === null || f === undefined ? undefined : f[p];
    // An ES module's CommonJS-style default export: { default: { handler } }
    if (f === undefined && mod && mod.default && typeof mod.default === 'object') {
        f = mod.default;
        for (const p of exportPath)
            f = f === null || f === undefined ? undefined : f[p];
    }
    if (typeof f !== 'function')
        throw new LoadError('Runtime.HandlerNotFound', modulePart + '.' + exportPath.join('.') +
                            ' is undefined or not exported');
    return f;
}

function uint(v, def) {
    if (v === undefined)
        return def;
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff)
        throw new LoadError('Runtime.InvalidInit',
                            'INST_INIT: memory_mb, timeout_ms: must be integers');
    return v;
}

function logStream(version) {
    const d = new Date();
    const pad = (n) => String(n).padStart(2, '0');
    const id = Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
    return d.getUTCFullYear() + '/' + pad(d.getUTCMonth() + 1) + '/' + pad(d.getUTCDate()) +
        '/[' + version + ']' + id;
}

async function onInit(payload) {
    let init;
    try {
        init = JSON.parse(payload.toString('utf8'));
    } catch (_) {
        init = null;
    }
    if (init === null || typeof init !== 'object' || Array.isArray(init))
        throw new LoadError('Runtime.InvalidInit', 'INST_INIT: not a JSON object');
    for (const k of ['function_name', 'handler', 'code_dir'])
        if (typeof init[k] !== 'string')
            throw new LoadError('Runtime.InvalidInit', 'INST_INIT: ' + k + ': must be a string');
    fn.name = init.function_name;
    fn.version = typeof init.function_version === 'string' ? init.function_version : '$LATEST';
    fn.memory = String(uint(init.memory_mb, 128));
    uint(init.timeout_ms, 3000);
    fn.arn = typeof init.invoked_function_arn === 'string' ? init.invoked_function_arn
        : 'arn:aws:lambda:local:000000000000:function:' + fn.name;
    fn.group = '/aws/lambda/' + fn.name;
    fn.stream = logStream(fn.version);
    // In the sandbox the helper mounted the code over /var/task (our cwd is the empty
    // directory below it until we enter it again).
    fn.taskRoot = sandboxed ? '/var/task' : init.code_dir;
    setupEnv(init.env, init, fn.taskRoot);
    try {
        process.chdir(fn.taskRoot);
    } catch (e) {
        throw new LoadError('Runtime.InvalidInit', "code_dir '" + fn.taskRoot + "': " + e.message);
    }
    fn.handler = await loadHandler(init.handler, path.resolve(fn.taskRoot));
    // A rejection the module's top-level code left unhandled is reported at the end of this
    // turn of the event loop: let it be an INST_INIT_ERROR.
    await new Promise((resolve) => setImmediate(resolve));
}

// ---- INST_INVOKE ----------------------------------------------------------------------------

let current = null; // the invocation in flight: { id, done }

function finish(inv, err, result) {
    if (inv.done || current !== inv)
        return;
    inv.done = true;
    current = null;
    if (err !== null && err !== undefined) {
        sendError(INST_ERROR, toErrorObject(err));
        return;
    }
    let body;
    try {
        body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
        sendError(INST_ERROR, errorObject('Runtime.MarshalError',
                                          'Unable to stringify response body: ' + e.message));
        return;
    }
    const buf = Buffer.from(body === undefined ? 'null' : body, 'utf8');
    if (buf.length > RESPONSE_MAX) {
        sendError(INST_ERROR, errorObject('Function.ResponseSizeTooLarge',
            'Response payload size (' + buf.length + ' bytes) exceeded maximum allowed ' +
            'payload size (' + RESPONSE_MAX + ' bytes).'));
        return;
    }
    send(INST_RESULT, buf);
}

function onInvoke(payload) {
    if (payload.length < INVOKE_HEADER) {
        process.stderr.write('spore: bad INST_INVOKE (' + payload.length + ' bytes)\n');
        process.exit(2);
    }
    const deadline = Number(payload.readBigInt64LE(0));
    const idEnd = payload.indexOf(0, 8);
    const requestId = payload.toString('latin1', 8, idEnd < 0 || idEnd > INVOKE_HEADER
        ? INVOKE_HEADER : idEnd);
    const inv = { id: requestId, done: false };
    current = inv;

    let event;
    try {
        event = payload.length > INVOKE_HEADER
            ? JSON.parse(payload.toString('utf8', INVOKE_HEADER)) : null;
    } catch (e) {
        inv.done = true;
        current = null;
        sendError(INST_ERROR, errorObject('Runtime.UnmarshalError',
                                          'Unable to unmarshal input: ' + e.message));
        return;
    }
    const done = (err, result) => finish(inv, err === undefined ? null : err, result);
    const context = {
        functionName: fn.name,
        functionVersion: fn.version,
        invokedFunctionArn: fn.arn,
        memoryLimitInMB: fn.memory,
        awsRequestId: requestId,
        logGroupName: fn.group,
        logStreamName: fn.stream,
        identity: undefined,
        clientContext: undefined,
        callbackWaitsForEmptyEventLoop: true,
        getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
        // the legacy completion methods
        succeed: (result) => done(null, result),
        fail: (err) => done(err === undefined || err === null ? new Error('failed') : err),
        done: (err, result) => done(err, result),
    };

    let ret;
    try {
        ret = fn.handler(event, context, done);
    } catch (e) {
        finish(inv, e === undefined || e === null ? new Error(String(e)) : e);
        return;
    }
    if (ret !== null && ret !== undefined && typeof ret.then === 'function')
        ret.then((r) => finish(inv, null, r),
                 (e) => finish(inv, e === undefined || e === null ? new Error(String(e)) : e));
    else if (fn.handler.length < 3)
        finish(inv, null, ret); // a synchronous handler: its value (callback handlers call back)
}

// ---- frames ---------------------------------------------------------------------------------

function onFrame(type, payload) {
    if (state === 'init') {
        if (type !== INST_INIT) {
            process.stderr.write('spore: expected INST_INIT, got frame type ' + type + '\n');
            process.exit(2);
        }
        state = 'loading';
        onInit(payload).then(() => {
            state = 'ready';
            send(INST_READY);
        }, (e) => {
            const obj = e instanceof LoadError ? errorObject(e.type, e.message, e.trace)
                : toErrorObject(e);
            sendError(INST_INIT_ERROR, obj);
            exitAfterWrites(1);
        });
        return;
    }
    if (type !== INST_INVOKE || state !== 'ready' || current) {
        process.stderr.write('spore: unexpected frame (type ' + type + ', ' + payload.length +
                             ' bytes)\n');
        process.exit(2);
    }
    onInvoke(payload);
}

// An exception no handler caught, a rejection no one handled: the process's state is unknown,
// so the instance ends (as node itself would, and as on Lambda), with the error in the log. The
// invocation in flight fails as a crash (502); answering it with an error first would let
// spored pass the next invocation to an instance that is about to exit. During INST_INIT the
// error is the INST_INIT_ERROR.
function fatal(e, rejection) {
    process.stderr.write((rejection ? 'Unhandled promise rejection: ' : 'Uncaught exception: ') +
                         (e instanceof Error && e.stack ? e.stack : String(e)) + '\n');
    if (state === 'loading') {
        sendError(INST_INIT_ERROR, rejection
            ? errorObject('Runtime.UnhandledPromiseRejection',
                          e instanceof Error ? e.name + ': ' + e.message : String(e), stackLines(e))
            : toErrorObject(e));
        exitAfterWrites(1);
        return;
    }
    process.exit(1);
}

// ---- start ----------------------------------------------------------------------------------

// What most functions load anyway: paid once per spare, before it is needed.
function warmUp() {
    for (const m of ['assert', 'buffer', 'child_process', 'crypto', 'dns', 'events',
                     'fs/promises', 'http', 'https', 'os', 'querystring', 'stream',
                     'stream/promises', 'string_decoder', 'timers/promises', 'url', 'util',
                     'zlib']) {
        try {
            require(m);
        } catch (_) {
            // not in this node
        }
    }
    JSON.parse(JSON.stringify({ a: [1, 2.5, null, true, 'x'], b: { c: 'd' } }));
    // The CommonJS loader's first module: resolving, reading, compiling.
    try {
        const Module = require('module');
        const name = path.join(path.dirname(SELF), 'spore-warm-up.js');
        const m = new Module(name, module);
        m.filename = name;
        m._compile("'use strict';\nmodule.exports = { handler: async (e) => e };\n", name);
        require.resolve(SELF);
        isFile(SELF);
        packageIsModule(path.dirname(SELF), path.dirname(SELF));
    } catch (_) {
        // only an optimisation
    }
    // The ES module loader starts on first use (a few ms): start it now.
    return import('node:fs').then(warmUpSocket, warmUpSocket);
}

// The first unix socket of a node process costs ~2 ms of lazy set-up, the first frames more:
// pay for them here, over a socket pair of our own (an abstract name: the spare has its own
// network namespace), with a frame as the channel carries them.
function warmUpSocket() {
    return new Promise((resolve) => {
        const name = '\0spore-warm-up-' + process.pid + '-' + Date.now();
        const done = (server, a, b) => {
            for (const x of [a, b])
                if (x)
                    x.destroy();
            if (server)
                server.close();
            resolve();
        };
        const server = net.createServer((peer) => {
            const h = Buffer.alloc(8);
            h.writeUInt32LE(INST_READY, 0);
            peer.cork();
            peer.write(h);
            peer.uncork();
            peer.on('data', () => done(server, peer, client));
            peer.on('error', () => done(server, peer, client));
        });
        let client = null;
        server.on('error', () => done(server, null, null));
        server.listen(name, () => {
            client = net.connect(name);
            client.on('data', (c) => {
                c.readUInt32LE(0);
                client.write(Buffer.from(JSON.stringify({ ok: true })));
            });
            client.on('error', () => done(server, null, client));
        });
        setTimeout(() => done(server, null, client), 2000).unref();
    });
}

async function main() {
    const addon = require(path.join(path.dirname(SELF), 'spore-nodejs.node'));
    delete process.env.SPORE_NODEJS_SANDBOX;
    delete process.env.SPORE_NODEJS_FRESH;
    if (!fresh)
        await warmUp();
    // Blocks until an instance is wanted; then 3, 1 and 2 are its chan, stdout and stderr.
    if (!addon.handover(HANDOVER_FD))
        process.exit(0); // retired
    process.on('uncaughtException', (e) => fatal(e, false));
    process.on('unhandledRejection', (e) => fatal(e, true));
    chan = new net.Socket({ fd: CHAN_FD, readable: true, writable: true });
    chan.on('data', onData);
    chan.on('end', () => process.exit(0));
    chan.on('error', () => process.exit(0)); // spored went away
}

main().catch((e) => {
    process.stderr.write('spore: runtime failure: ' + (e && e.stack ? e.stack : String(e)) + '\n');
    process.exit(2);
});
