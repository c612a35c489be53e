/* SPDX-License-Identifier: MIT */
/* spore-zygote-python3: embeds Debian's libpython3. The zygote starts the interpreter once
 * (isolated: no user site, no PYTHON* variables, Debian's stdlib under SPORE_PYTHON_HOME),
 * imports the runtime bootstrap below and the common stdlib modules, and freezes the GC so that
 * forked instances share those objects without the collector dirtying them. An instance sets
 * os.environ from its new C environment, imports the handler's module and calls the handler
 * with the AWS Lambda signature handler(event, context). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "zygote.h"

#if defined(__SANITIZE_ADDRESS__)
#define SPORE_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPORE_ASAN 1
#endif
#endif

#ifdef SPORE_ASAN
/* Under ASan, Python uses the malloc allocator (set below) so ASan sees every object, and
 * LeakSanitizer checks each process as it exits. PyOS_AfterFork_Child() re-creates the
 * interpreter's locks in every forked child and drops the parent's copies
 * (PyThread_allocate_lock): not ours to fix, so suppressed here (linked into the program, no
 * LSAN_OPTIONS needed). See docs/RUNTIMES.md. */
const char *__lsan_default_suppressions(void);
__attribute__((visibility("default"), used)) const char *__lsan_default_suppressions(void)
{
	return "leak:PyThread_allocate_lock\n";
}
#endif

/* The runtime side of an instance, in Python: small, and run once in the zygote. Frames from
 * this file ("<spore>") are left out of stack traces, as Lambda leaves out its runtime's. */
static const char bootstrap_py[] =
	"import sys, os, gc, json, time, decimal, traceback, importlib\n"
	"import importlib.machinery, importlib.util\n"
	"\n"
	"_BOOT = '<spore>'\n"
	"_fn = None\n"
	"_static = None\n"
	"\n"
	"class LambdaContext(object):\n"
	"    def __init__(self, static, aws_request_id, deadline_ms):\n"
	"        (self.function_name, self.function_version, self.invoked_function_arn,\n"
	"         self.memory_limit_in_mb, self.log_group_name, self.log_stream_name) = static\n"
	"        self.aws_request_id = aws_request_id\n"
	"        self.identity = None\n"
	"        self.client_context = None\n"
	"        self._deadline_ms = deadline_ms\n"
	"\n"
	"    def get_remaining_time_in_millis(self):\n"
	"        return max(int(self._deadline_ms - time.time() * 1000), 0)\n"
	"\n"
	"    def __repr__(self):\n"
	"        return ('LambdaContext([aws_request_id=%s,log_group_name=%s,log_stream_name=%s,'\n"
	"                'function_name=%s,memory_limit_in_mb=%s,function_version=%s,'\n"
	"                'invoked_function_arn=%s,client_context=%s,identity=%s])' % (\n"
	"                self.aws_request_id, self.log_group_name, self.log_stream_name,\n"
	"                self.function_name, self.memory_limit_in_mb, self.function_version,\n"
	"                self.invoked_function_arn, self.client_context, self.identity))\n"
	"\n"
	"class _Encoder(json.JSONEncoder):\n"
	"    def default(self, o):\n"
	"        if isinstance(o, decimal.Decimal):\n"
	"            return int(o) if o == o.to_integral_value() else float(o)\n"
	"        return json.JSONEncoder.default(self, o)\n"
	"\n"
	"_encoder = _Encoder(ensure_ascii=False, allow_nan=False)\n"
	"\n"
	"def _trace(tb):\n"
	"    return traceback.format_list(\n"
	"        [f for f in traceback.extract_tb(tb) if f.filename != _BOOT and\n"
	"         f.filename != importlib.__file__ and\n"
	"         not f.filename.startswith('<frozen importlib.')])\n"
	"\n"
	"def _error(etype, msg, trace):\n"
	"    return json.dumps({'errorMessage': msg, 'errorType': etype,\n"
	"                       'stackTrace': trace}).encode()\n"
	"\n"
	"def _exc_error(e):\n"
	"    return _error(type(e).__name__, str(e), _trace(e.__traceback__))\n"
	"\n"
	"def flush():\n"
	"    for s in (sys.stdout, sys.stderr):\n"
	"        try:\n"
	"            s.flush()\n"
	"        except Exception:\n"
	"            pass\n"
	"\n"
	"def set_environ(env):\n"
	"    os.environ._data.clear()\n"
	"    os.environ._data.update(env)\n"
	"    time.tzset()\n"
	"\n"
	"_EXT_SUFFIXES = tuple(importlib.machinery.EXTENSION_SUFFIXES)\n"
	"\n"
	"def _import(modname, code_dir):\n"
	"    # What importlib.import_module() finds first for a plain NAME.py at the head of sys.path,\n"
	"    # loaded straight from its file: no finders' directory scans and no .pyc probes on the cold\n"
	"    # start. A dotted name, a package or an extension module of that name, or shipped\n"
	"    # __pycache__ go through importlib, as does a name with no NAME.py here.\n"
	"    base = code_dir + '/' + modname\n"
	"    path = base + '.py'\n"
	"    if ('.' in modname or modname in sys.modules or not os.path.isfile(path) or\n"
	"            os.path.isdir(base) or os.path.isdir(code_dir + '/__pycache__') or\n"
	"            any(os.path.exists(base + s) for s in _EXT_SUFFIXES)):\n"
	"        return importlib.import_module(modname)\n"
	"    with open(path, 'rb') as f:\n"
	"        src = f.read()\n"
	"    m = importlib.util.module_from_spec(importlib.util.spec_from_file_location(modname, path))\n"
	"    sys.modules[modname] = m\n"
	"    try:\n"
	"        exec(compile(src, path, 'exec', dont_inherit=True), m.__dict__)\n"
	"    except BaseException:\n"
	"        sys.modules.pop(modname, None)\n"
	"        raise\n"
	"    return sys.modules[modname]\n"
	"\n"
	"def load(handler, code_dir, static):\n"
	"    global _fn, _static\n"
	"    _static = static\n"
	"    sys.path.insert(0, code_dir)\n"
	"    try:\n"
	"        modname, fname = handler.rsplit('.', 1)\n"
	"    except ValueError as e:\n"
	"        return _error('Runtime.MalformedHandlerName',\n"
	"                      \"Bad handler '%s': %s\" % (handler, e), [])\n"
	"    modname = modname.replace('/', '.')\n"
	"    if not modname or not fname:\n"
	"        return _error('Runtime.MalformedHandlerName',\n"
	"                      \"Bad handler '%s'\" % handler, [])\n"
	"    if modname.split('.')[0] in sys.builtin_module_names:\n"
	"        return _error('Runtime.BuiltInModuleConflict',\n"
	"                      \"Cannot use built-in module %s as a handler module\" % modname,\n"
	"                      [])\n"
	"    try:\n"
	"        m = _import(modname, code_dir)\n"
	"    except ImportError as e:\n"
	"        return _error('Runtime.ImportModuleError',\n"
	"                      \"Unable to import module '%s': %s\" % (modname, e), [])\n"
	"    except SyntaxError as e:\n"
	"        return _error('Runtime.UserCodeSyntaxError',\n"
	"                      \"Syntax error in module '%s': %s\" % (modname, e),\n"
	"                      ['  File \"%s\" Line %s\\n    %s' %\n"
	"                       (e.filename, e.lineno, e.text)])\n"
	"    except BaseException as e:\n"
	"        return _exc_error(e)\n"
	"    fn = getattr(m, fname, None)\n"
	"    if fn is None or not callable(fn):\n"
	"        return _error('Runtime.HandlerNotFound',\n"
	"                      \"Handler '%s' missing on module '%s'\" % (fname, modname), [])\n"
	"    _fn = fn\n"
	"    return None\n"
	"\n"
	"def _exit_code(e):\n"
	"    if e.code is None:\n"
	"        return 0\n"
	"    if isinstance(e.code, int):\n"
	"        return e.code & 0xff\n"
	"    print(e.code, file=sys.stderr)\n"
	"    return 1\n"
	"\n"
	"# (0, result JSON) | (1, error JSON) | (2, exit code: the handler called sys.exit())\n"
	"def invoke(event, request_id, deadline_ms):\n"
	"    try:\n"
	"        try:\n"
	"            ev = json.loads(event)\n"
	"        except ValueError as e:\n"
	"            return 1, _error('Runtime.UnmarshalError',\n"
	"                             'Unable to unmarshal input: %s' % e, [])\n"
	"        ctx = LambdaContext(_static, request_id, deadline_ms)\n"
	"        try:\n"
	"            result = _fn(ev, ctx)\n"
	"        except SystemExit as e:\n"
	"            return 2, _exit_code(e)\n"
	"        except BaseException as e:\n"
	"            return 1, _exc_error(e)\n"
	"        try:\n"
	"            return 0, _encoder.encode(result).encode('utf-8')\n"
	"        except Exception as e:\n"
	"            return 1, _error('Runtime.MarshalError',\n"
	"                             'Unable to marshal response: %s' % e, [])\n"
	"    finally:\n"
	"        flush()\n"
	"\n"
	"# What most handlers import anyway: pay for it once, in the zygote.\n"
	"for _m in ('abc', 'base64', 'binascii', 'bisect', 'calendar', 'collections',\n"
	"           'contextlib', 'copy', 'csv', 'dataclasses', 'datetime', 'enum', 'functools',\n"
	"           'hashlib', 'hmac', 'heapq', 'io', 'itertools', 'logging', 'math', 'operator',\n"
	"           'pathlib', 'random', 're', 'secrets', 'signal', 'string', 'struct',\n"
	"           'tempfile', 'textwrap', 'threading', 'typing', 'urllib.parse', 'uuid',\n"
	"           'zlib'):\n"
	"    try:\n"
	"        importlib.import_module(_m)\n"
	"    except Exception:\n"
	"        pass\n"
	"del _m\n"
	"\n"
	"# Run the invocation path in the zygote: lazily built state (the JSON encoder, the 3.11\n"
	"# interpreter's specialised bytecode) is then made once and shared by every instance.\n"
	"def warm_up():\n"
	"    global _fn, _static\n"
	"    def ok(event, context):\n"
	"        context.get_remaining_time_in_millis()\n"
	"        return {'message': 'hello, %s' % event.get('name'), 'n': [1, 2.5, None, True]}\n"
	"    def bad(event, context):\n"
	"        raise ValueError('warm-up')\n"
	"    _static = ('warm-up', '$LATEST', 'arn', 128, 'group', 'stream')\n"
	"    for _fn in (ok,) * 16 + (bad,) * 2:\n"
	"        invoke(b'{\"name\": \"x\", \"list\": [1, 2.5, null, true]}', 'warm-up', 0)\n"
	"    _fn = _static = None\n"
	"\n"
	"def freeze():\n"
	"    gc.collect()\n"
	"    gc.freeze()\n";

static PyObject *boot_module, *boot_load, *boot_invoke, *boot_set_environ, *boot_flush;

static PyObject *boot_get(PyObject *dict, const char *name)
{
	PyObject *o = PyDict_GetItemString(dict, name); /* borrowed */

	if (!o || !PyCallable_Check(o))
		return NULL;
	Py_INCREF(o);
	return o;
}

static int python_init_language(void)
{
	char *argv[] = { (char *)"spore-zygote-python3", NULL };
	PyObject *code, *dict, *r;
	PyPreConfig pre;
	PyConfig config;
	PyStatus st;

	PyPreConfig_InitIsolatedConfig(&pre);
	pre.utf8_mode = 1; /* as Lambda's LANG=C.UTF-8: open() and stdio speak UTF-8 */
#ifdef SPORE_ASAN
	pre.allocator = PYMEM_ALLOCATOR_MALLOC;
#endif
	st = Py_PreInitialize(&pre);
	if (PyStatus_Exception(st))
		goto fail_status;

	PyConfig_InitIsolatedConfig(&config);
	config.install_signal_handlers = 1; /* SIGPIPE ignored, SIGINT -> KeyboardInterrupt */
	config.buffered_stdio = 0; /* logs reach spored as they are written */
	config.write_bytecode = 0; /* the code directory is not ours to write */
	config.site_import = 1;
	st = PyConfig_SetBytesString(&config, &config.home, SPORE_PYTHON_HOME);
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesString(&config, &config.program_name, argv[0]);
	if (!PyStatus_Exception(st))
		st = PyConfig_SetBytesArgv(&config, 1, argv);
	if (!PyStatus_Exception(st))
		st = Py_InitializeFromConfig(&config);
	PyConfig_Clear(&config);
	if (PyStatus_Exception(st))
		goto fail_status;

	code = Py_CompileString(bootstrap_py, "<spore>", Py_file_input);
	if (!code)
		goto fail_py;
	boot_module = PyImport_AddModule("_spore"); /* borrowed, owned by sys.modules */
	if (!boot_module) {
		Py_DECREF(code);
		goto fail_py;
	}
	Py_INCREF(boot_module);
	dict = PyModule_GetDict(boot_module);
	if (PyDict_SetItemString(dict, "__builtins__", PyEval_GetBuiltins()) < 0) {
		Py_DECREF(code);
		goto fail_py;
	}
	r = PyEval_EvalCode(code, dict, dict);
	Py_DECREF(code);
	if (!r)
		goto fail_py;
	Py_DECREF(r);
	boot_load = boot_get(dict, "load");
	boot_invoke = boot_get(dict, "invoke");
	boot_set_environ = boot_get(dict, "set_environ");
	boot_flush = boot_get(dict, "flush");
	if (!boot_load || !boot_invoke || !boot_set_environ || !boot_flush)
		return -EINVAL;
	r = PyObject_CallMethod(boot_module, "warm_up", NULL);
	if (!r)
		goto fail_py;
	Py_DECREF(r);
	r = PyObject_CallMethod(boot_module, "freeze", NULL);
	if (!r)
		goto fail_py;
	Py_DECREF(r);
	return 0;

fail_status:
	fprintf(stderr, "python: %s%s%s\n", st.func ? st.func : "", st.func ? ": " : "",
		st.err_msg ? st.err_msg : "initialisation failed");
	return -EIO;
fail_py:
	PyErr_Print();
	return -EIO;
}

static void python_before_fork(void)
{
	PyOS_BeforeFork();
}

static void python_after_fork_parent(void)
{
	PyOS_AfterFork_Parent();
}

static void python_after_fork_child(void)
{
	PyOS_AfterFork_Child();
}

static void python_flush(void)
{
	PyObject *r = PyObject_CallNoArgs(boot_flush);

	if (!r)
		PyErr_Clear();
	Py_XDECREF(r);
}

/* The bytes of a Python exception as an error JSON (for failures of the bootstrap itself). */
static char *error_from_exception(const char *fallback_type)
{
	PyObject *type, *value, *tb, *s = NULL;
	const char *name = fallback_type, *msg = NULL;
	char *j;

	PyErr_Fetch(&type, &value, &tb);
	if (type && PyType_Check(type))
		name = ((PyTypeObject *)type)->tp_name;
	if (value)
		s = PyObject_Str(value);
	if (s)
		msg = PyUnicode_AsUTF8(s);
	if (!msg)
		PyErr_Clear();
	j = runtime_error_json(name, msg ? msg : "", NULL, 0);
	Py_XDECREF(s);
	Py_XDECREF(type);
	Py_XDECREF(value);
	Py_XDECREF(tb);
	return j;
}

static char *bytes_dup(PyObject *b, size_t *ret_len)
{
	char *p;

	if (!PyBytes_Check(b))
		return NULL;
	p = malloc((size_t)PyBytes_GET_SIZE(b) + 1);
	if (!p)
		return NULL;
	memcpy(p, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
	p[PyBytes_GET_SIZE(b)] = 0;
	if (ret_len)
		*ret_len = (size_t)PyBytes_GET_SIZE(b);
	return p;
}

/* os.environ was built in the zygote; point it at this instance's environment. */
static int python_set_environ(void)
{
	PyObject *d, *r;

	d = PyDict_New();
	if (!d)
		return -ENOMEM;
	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		PyObject *k, *v;
		int q;

		if (!eq || eq == *e)
			continue;
		k = PyBytes_FromStringAndSize(*e, eq - *e);
		v = PyBytes_FromString(eq + 1);
		q = k && v ? PyDict_SetItem(d, k, v) : -1;
		Py_XDECREF(k);
		Py_XDECREF(v);
		if (q < 0) {
			Py_DECREF(d);
			return -ENOMEM;
		}
	}
	r = PyObject_CallOneArg(boot_set_environ, d);
	Py_DECREF(d);
	if (!r)
		return -EIO;
	Py_DECREF(r);
	return 0;
}

static int python_load(const struct inst_config *cfg, char **ret_error)
{
	PyObject *st, *r, *dir;
	char *e;

	if (python_set_environ() < 0) {
		*ret_error = error_from_exception("Runtime.InvalidInit");
		return -EIO;
	}
	dir = PyUnicode_DecodeFSDefault(cfg->code_dir);
	st = Py_BuildValue("(sssIss)", cfg->function_name, cfg->function_version,
			   cfg->invoked_function_arn, (unsigned)cfg->memory_mb, cfg->log_group_name,
			   cfg->log_stream_name);
	if (!dir || !st) {
		Py_XDECREF(dir);
		Py_XDECREF(st);
		*ret_error = error_from_exception("Runtime.InvalidInit");
		return -EINVAL;
	}
	r = PyObject_CallFunction(boot_load, "sOO", cfg->handler, dir, st);
	Py_DECREF(dir);
	Py_DECREF(st);
	if (!r) {
		*ret_error = error_from_exception("Runtime.Unknown");
		return -EINVAL;
	}
	if (r == Py_None) {
		Py_DECREF(r);
		return 0;
	}
	e = bytes_dup(r, NULL);
	Py_DECREF(r);
	*ret_error = e;
	return -ENOENT;
}

static int python_invoke(const char *event, size_t event_len, const struct inst_invoke *inv,
			 char **ret_out, size_t *ret_len)
{
	PyObject *r;
	long kind;
	char *out;
	size_t len;

	r = PyObject_CallFunction(boot_invoke, "y#sL", event, (Py_ssize_t)event_len,
				  inv->request_id, (long long)inv->deadline_ms);
	if (!r) {
		PyErr_Print();
		return -EIO;
	}
	if (!PyTuple_Check(r) || PyTuple_GET_SIZE(r) != 2 ||
	    !PyLong_Check(PyTuple_GET_ITEM(r, 0))) {
		Py_DECREF(r);
		return -EIO;
	}
	kind = PyLong_AsLong(PyTuple_GET_ITEM(r, 0));
	if (kind == 2) {
		/* sys.exit() in the handler ends the instance, as on Lambda. */
		long code = PyLong_AsLong(PyTuple_GET_ITEM(r, 1));

		(void)fflush(stdout);
		(void)fflush(stderr);
		_exit((int)(code & 0xff));
	}
	out = bytes_dup(PyTuple_GET_ITEM(r, 1), &len);
	Py_DECREF(r);
	if (!out)
		return -ENOMEM;
	*ret_out = out;
	*ret_len = len;
	return kind == 0 ? INVOKE_RESULT : INVOKE_ERROR;
}

static const struct runtime_ops python_ops = {
	.name = "python3",
	.init_language = python_init_language,
	.before_fork = python_before_fork,
	.after_fork_parent = python_after_fork_parent,
	.after_fork_child = python_after_fork_child,
	.load = python_load,
	.invoke = python_invoke,
	.flush = python_flush,
};

int main(int argc, char *argv[])
{
	return zygote_main(&python_ops, argc, argv);
}
