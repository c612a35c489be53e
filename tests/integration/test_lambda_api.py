# SPDX-License-Identifier: MIT
"""The AWS Lambda REST API (issue 8, must-shows 1 and 2) against a real spored, driven the way a
new user would: Debian's AWS CLI (/usr/bin/aws, package awscli) and boto3 (python3-boto3), every
call signed (SigV4) with an access key configured in spored's lambda_access_keys file.

 - the CLI: create a function from a zip, invoke it with and without --log-type Tail, update its
   code, publish a version, point an alias at it, invoke the alias, list, an async (Event) invoke
   answered 202 that runs, delete;
 - the CLI's own error messages for a missing function, a bad parameter and throttling, and for
   a bad secret, an unknown key and an unsigned request;
 - boto3: the same shapes through client.exceptions, paging, function errors and timeouts
   (X-Amz-Function-Error), DryRun, aliases with weights, concurrency settings, an Event invoke of
   a published version that is not live, configuration updates;
 - raw HTTP: a signed request replayed with another body, a stale X-Amz-Date;
 - published versions and aliases survive a restart; lambda_allow_unsigned.

Skips (77) when not root, or when awscli / python3-boto3 are not installed (tools/install-deps.sh
installs them)."""

import base64
import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import harness
from harness import Spored, SporeTestCase, wait_for, zip_files

AWS = "/usr/bin/aws"
KEY_ID = "AKIDSPORETEST0001"
SECRET = "k3y/with+odd=chars-0001"
ACCOUNT = "123456789012"
REGION = "eu-west-3"
ROLE = "arn:aws:iam::%s:role/spore-test" % ACCOUNT

# Isolate boto3 from any configuration of the machine's user.
_AWS_HOME = tempfile.mkdtemp(prefix="lambda-it-aws-")
for _k in list(os.environ):
    if _k.startswith("AWS_"):
        del os.environ[_k]
os.environ.update({
    "AWS_CONFIG_FILE": os.path.join(_AWS_HOME, "config"),
    "AWS_SHARED_CREDENTIALS_FILE": os.path.join(_AWS_HOME, "credentials"),
    "AWS_EC2_METADATA_DISABLED": "true",
})

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # checked in main()
    boto3 = None

SOURCE = """
import os, time
VERSION = %d
def handler(event, context):
    print("log line of version %%d: %%s" %% (VERSION, event.get("marker", "-")))
    if event.get("fail"):
        raise ValueError("asked to fail")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"version": VERSION, "event": event, "env": os.environ.get("GREETING"),
            "function_version": context.function_version}
"""


def fn_zip(version):
    return zip_files({"app.py": SOURCE % version})


def cli_env(secret=SECRET, key_id=KEY_ID):
    home = os.path.join(_AWS_HOME, "home")
    os.makedirs(home, exist_ok=True)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "LANG": "C.UTF-8",
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_DEFAULT_OUTPUT": "json",
        "AWS_PAGER": "",
        "AWS_CONFIG_FILE": os.path.join(_AWS_HOME, "config"),
        "AWS_SHARED_CREDENTIALS_FILE": os.path.join(_AWS_HOME, "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


class LambdaCase(SporeTestCase):
    keys_dir = None

    @classmethod
    def start_spored(cls, extra=None):
        cls.keys_dir = tempfile.mkdtemp(prefix="lambda-it-keys-")
        cls.addClassCleanup(shutil.rmtree, cls.keys_dir, True)
        keys = os.path.join(cls.keys_dir, "keys")
        with open(keys, "w") as f:
            f.write("# test keys\n%s:%s\nAKIDOTHER:other-secret\n" % (KEY_ID, SECRET))
        os.chmod(keys, 0o600)
        cfg = {"lambda_access_keys": keys, "lambda_account_id": ACCOUNT,
               "lambda_region": REGION}
        cfg.update(extra or {})
        cls.spored = Spored.for_class(cls, cfg)
        cls.endpoint = "http://127.0.0.1:%d" % cls.spored.port

    def aws(self, *args, ok=True, secret=SECRET, key_id=KEY_ID, timeout=120, extra_env=None):
        """Runs /usr/bin/aws lambda ARGS against spored; (rc, parsed stdout or text, stderr)."""
        env = cli_env(secret, key_id)
        env.update(extra_env or {})
        cmd = [AWS, "--endpoint-url", self.endpoint, "lambda"] + [str(a) for a in args]
        p = subprocess.run(cmd, env=env, capture_output=True, timeout=timeout,
                           cwd=self.workdir)
        out = p.stdout.decode("utf-8", "replace")
        err = p.stderr.decode("utf-8", "replace")
        if ok and p.returncode != 0:
            self.fail("aws %s: exit %d\n%s%s\n%s" % (" ".join(cmd[3:]), p.returncode, out, err,
                                                     self.spored.log_tail(30)))
        try:
            parsed = json.loads(out) if out.strip() else None
        except ValueError:
            parsed = out
        return p.returncode, parsed, err

    def client(self, secret=SECRET, key_id=KEY_ID, retries=1):
        c = boto3.client(
            "lambda", endpoint_url=self.endpoint, region_name=REGION,
            aws_access_key_id=key_id, aws_secret_access_key=secret,
            config=botocore.config.Config(retries={"max_attempts": retries, "mode": "standard"},
                                          read_timeout=60))
        if hasattr(c, "close"):
            self.addCleanup(c.close)
        return c

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="lambda-it-cli-")
        self.addCleanup(shutil.rmtree, self.workdir, True)

    def write(self, name, data):
        path = os.path.join(self.workdir, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def read_json(self, name):
        with open(os.path.join(self.workdir, name), "rb") as f:
            return json.loads(f.read())

    def wait_log(self, fn, needle, timeout=10.0):
        """Waits until spored's log of fn (GET /v1/functions/fn/logs) has a line with needle."""
        def have():
            r = self.spored.api("GET", "/v1/functions/%s/logs?tail=1000" % fn)
            if r.status != 200:
                return False
            return any(needle in json.loads(l).get("message", "")
                       for l in r.body.decode().splitlines() if l.strip())
        return wait_for(have, timeout, 0.05)


class TestCli(LambdaCase):
    """Must-shows 1 and 2 with Debian's AWS CLI."""

    @classmethod
    def setUpClass(cls):
        cls.start_spored()

    def test_lifecycle(self):
        z1, z2, z3 = (self.write("v%d.zip" % i, fn_zip(i)) for i in (1, 2, 3))
        # create from a zip
        _, cfg, _ = self.aws("create-function", "--function-name", "greeter",
                             "--runtime", "python3.11", "--role", ROLE,
                             "--handler", "app.handler", "--zip-file", "fileb://" + z1,
                             "--environment", "Variables={GREETING=hi}",
                             "--memory-size", "256", "--timeout", "10")
        with open(z1, "rb") as f:
            sha = base64.b64encode(hashlib.sha256(f.read()).digest()).decode()
        self.assertEqual(cfg["FunctionName"], "greeter")
        self.assertEqual(cfg["FunctionArn"],
                         "arn:aws:lambda:%s:%s:function:greeter" % (REGION, ACCOUNT))
        self.assertEqual(cfg["Runtime"], "python3.11")
        self.assertEqual(cfg["Role"], ROLE)
        self.assertEqual(cfg["Handler"], "app.handler")
        self.assertEqual(cfg["MemorySize"], 256)
        self.assertEqual(cfg["Timeout"], 10)
        self.assertEqual(cfg["CodeSha256"], sha)
        self.assertEqual(cfg["CodeSize"], os.path.getsize(z1))
        self.assertEqual(cfg["Version"], "$LATEST")
        self.assertEqual(cfg["State"], "Active")
        self.assertEqual(cfg["LastUpdateStatus"], "Successful")
        self.assertEqual(cfg["Environment"], {"Variables": {"GREETING": "hi"}})
        self.assertRegex(cfg["LastModified"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$")
        # the CLI's waiter polls State / LastUpdateStatus
        self.aws("wait", "function-active-v2", "--function-name", "greeter")

        # invoke without and with --log-type Tail
        _, out, _ = self.aws("invoke", "--function-name", "greeter", "--cli-binary-format",
                             "raw-in-base64-out", "--payload", '{"marker": "plain"}', "o1.json")
        self.assertEqual(out, {"StatusCode": 200, "ExecutedVersion": "$LATEST"})
        res = self.read_json("o1.json")
        self.assertEqual(res["version"], 1)
        self.assertEqual(res["event"], {"marker": "plain"})
        self.assertEqual(res["env"], "hi")
        _, out, _ = self.aws("invoke", "--function-name", "greeter", "--cli-binary-format",
                             "raw-in-base64-out", "--payload", '{"marker": "tailed"}',
                             "--log-type", "Tail", "o2.json")
        self.assertEqual(out["StatusCode"], 200)
        log = base64.b64decode(out["LogResult"]).decode()
        lines = log.splitlines()
        self.assertRegex(lines[0], r"^START RequestId: [0-9a-f-]{36} Version: \$LATEST$")
        rid = lines[0].split()[2]
        self.assertIn("log line of version 1: tailed", log)
        self.assertNotIn("plain", log, "another invocation's line in this one's tail")
        self.assertIn("END RequestId: %s" % rid, log)
        self.assertRegex(log, r"REPORT RequestId: %s\tDuration: [0-9.]+ ms" % rid)
        self.assertEqual(self.read_json("o2.json")["version"], 1)

        # update the code; publish it as version 1; new code again
        _, cfg, _ = self.aws("update-function-code", "--function-name", "greeter",
                             "--zip-file", "fileb://" + z2)
        self.assertEqual(cfg["Version"], "$LATEST")
        self.assertNotEqual(cfg["CodeSha256"], sha)
        self.assertEqual(cfg["Environment"], {"Variables": {"GREETING": "hi"}})
        self.aws("wait", "function-updated-v2", "--function-name", "greeter")
        _, pub, _ = self.aws("publish-version", "--function-name", "greeter",
                             "--description", "the second code")
        self.assertEqual(pub["Version"], "1")
        self.assertEqual(pub["FunctionArn"],
                         "arn:aws:lambda:%s:%s:function:greeter:1" % (REGION, ACCOUNT))
        self.assertEqual(pub["Description"], "the second code")
        # nothing changed: publishing again gives the same version, as Lambda does
        _, again, _ = self.aws("publish-version", "--function-name", "greeter")
        self.assertEqual(again["Version"], "1")
        self.aws("update-function-code", "--function-name", "greeter", "--zip-file",
                 "fileb://" + z3)

        # an alias on version 1; invoke it (and version 1, and $LATEST)
        _, alias, _ = self.aws("create-alias", "--function-name", "greeter", "--name", "live",
                               "--function-version", "1", "--description", "production")
        self.assertEqual(alias["AliasArn"],
                         "arn:aws:lambda:%s:%s:function:greeter:live" % (REGION, ACCOUNT))
        self.assertEqual(alias["FunctionVersion"], "1")
        _, out, _ = self.aws("invoke", "--function-name", "greeter:live", "o3.json")
        self.assertEqual(out["ExecutedVersion"], "1")
        self.assertEqual(self.read_json("o3.json")["version"], 2)
        self.assertEqual(self.read_json("o3.json")["function_version"],
                         self.spored_version_of("greeter", "1"))
        _, out, _ = self.aws("invoke", "--function-name", "greeter", "--qualifier", "live",
                             "--log-type", "Tail", "o4.json")
        self.assertEqual(out["ExecutedVersion"], "1")
        self.assertIn("Version: 1", base64.b64decode(out["LogResult"]).decode())
        _, out, _ = self.aws("invoke", "--function-name", "greeter", "o5.json")
        self.assertEqual(out["ExecutedVersion"], "$LATEST")
        self.assertEqual(self.read_json("o5.json")["version"], 3)

        # list
        _, lst, _ = self.aws("list-functions")
        names = [f["FunctionName"] for f in lst["Functions"]]
        self.assertIn("greeter", names)
        _, vers, _ = self.aws("list-versions-by-function", "--function-name", "greeter")
        self.assertEqual([v["Version"] for v in vers["Versions"]], ["$LATEST", "1"])
        _, al, _ = self.aws("list-aliases", "--function-name", "greeter")
        self.assertEqual([a["Name"] for a in al["Aliases"]], ["live"])
        _, got, _ = self.aws("get-function", "--function-name", "greeter")
        self.assertEqual(got["Configuration"]["Version"], "$LATEST")
        self.assertIn("Code", got)

        # asynchronous: 202, and it runs
        _, out, _ = self.aws("invoke", "--function-name", "greeter", "--invocation-type",
                             "Event", "--cli-binary-format", "raw-in-base64-out", "--payload",
                             '{"marker": "async-1"}', "o6.json")
        self.assertEqual(out, {"StatusCode": 202})
        self.assertTrue(self.wait_log("greeter", "log line of version 3: async-1"),
                        "the Event invocation did not run\n" + self.spored.log_tail(30))

        # delete; then it is gone
        rc, out, err = self.aws("delete-function", "--function-name", "greeter")
        self.assertEqual(rc, 0)
        rc, _, err = self.aws("get-function", "--function-name", "greeter", ok=False)
        self.assertEqual(rc, 254)
        self.assertIn("ResourceNotFoundException", err)
        self.assertFalse(os.path.exists(self.spored.function_dir("greeter")))

    def spored_version_of(self, fn, published):
        """The spore version behind a published Lambda version (context.function_version)."""
        with open(os.path.join(self.spored.function_dir(fn), "lambda.json")) as f:
            meta = json.load(f)
        for e in meta["published"]:
            if str(e["version"]) == published:
                return str(e["spore"])
        self.fail("version %s of %s not published" % (published, fn))

    def test_cli_errors(self):
        z = self.write("e.zip", fn_zip(1))
        # a missing function
        rc, _, err = self.aws("get-function", "--function-name", "does-not-exist", ok=False)
        self.assertEqual(rc, 254)
        self.assertIn("An error occurred (ResourceNotFoundException) when calling the "
                      "GetFunction operation: Function not found: arn:aws:lambda:%s:%s:function:"
                      "does-not-exist" % (REGION, ACCOUNT), err)
        rc, _, err = self.aws("invoke", "--function-name", "does-not-exist", "x.json", ok=False)
        self.assertIn("(ResourceNotFoundException) when calling the Invoke operation", err)
        # a bad parameter
        rc, _, err = self.aws("create-function", "--function-name", "errs", "--runtime",
                              "cobol85", "--role", ROLE, "--handler", "app.handler",
                              "--zip-file", "fileb://" + z, ok=False)
        self.assertEqual(rc, 254)
        self.assertIn("An error occurred (InvalidParameterValueException) when calling the "
                      "CreateFunction operation: The runtime parameter of cobol85 is not "
                      "supported", err)
        rc, _, err = self.aws("create-function", "--function-name", "errs", "--runtime",
                              "python3.11", "--role", "not-a-role", "--handler", "app.handler",
                              "--zip-file", "fileb://" + z, ok=False)
        self.assertIn("(InvalidParameterValueException) when calling the CreateFunction "
                      "operation: 1 validation error detected: Value 'not-a-role' at 'role'", err)
        rc, _, err = self.aws("create-function", "--function-name", "errs", "--runtime",
                              "python3.11", "--role", ROLE, "--handler", "app.handler",
                              "--zip-file", "fileb://" + self.write(
                                  "bad.zip", zip_files({"../escape.py": "x = 1\n"})),
                              ok=False)
        self.assertIn("(InvalidParameterValueException) when calling the CreateFunction "
                      "operation: Could not unzip uploaded file", err)
        rc, _, err = self.aws("create-function", "--function-name", "Upper", "--runtime",
                              "python3.11", "--role", ROLE, "--handler", "app.handler",
                              "--zip-file", "fileb://" + z, ok=False)
        self.assertIn("(InvalidParameterValueException)", err)
        self.assertIn("lowercase", err)
        # throttling: reserved concurrency 0 stops every invocation
        self.aws("create-function", "--function-name", "errs", "--runtime", "python3.11",
                 "--role", ROLE, "--handler", "app.handler", "--zip-file", "fileb://" + z)
        rc, _, err = self.aws("create-function", "--function-name", "errs", "--runtime",
                              "python3.11", "--role", ROLE, "--handler", "app.handler",
                              "--zip-file", "fileb://" + z, ok=False)
        self.assertIn("An error occurred (ResourceConflictException) when calling the "
                      "CreateFunction operation: Function already exist: errs", err)
        _, out, _ = self.aws("put-function-concurrency", "--function-name", "errs",
                             "--reserved-concurrent-executions", "0")
        self.assertEqual(out, {"ReservedConcurrentExecutions": 0})
        t0 = time.monotonic()
        rc, _, err = self.aws("invoke", "--function-name", "errs", "x.json", ok=False)
        self.assertEqual(rc, 254)
        self.assertRegex(err, r"An error occurred \(TooManyRequestsException\) when calling the "
                              r"Invoke operation( \(reached max retries: \d+\))?: Rate Exceeded\.")
        sys.stderr.write("throttled invoke, with the CLI's retries: %.1f s\n" %
                         (time.monotonic() - t0))
        self.aws("delete-function-concurrency", "--function-name", "errs")
        self.aws("invoke", "--function-name", "errs", "x.json")
        self.aws("delete-function", "--function-name", "errs")

    def test_signatures_refused(self):
        z = self.write("s.zip", fn_zip(1))
        # a bad secret: refused, nothing created
        rc, _, err = self.aws("create-function", "--function-name", "sig", "--runtime",
                              "python3.11", "--role", ROLE, "--handler", "app.handler",
                              "--zip-file", "fileb://" + z, secret="not-the-secret", ok=False)
        self.assertEqual(rc, 254)
        self.assertIn("An error occurred (InvalidSignatureException) when calling the "
                      "CreateFunction operation: The request signature we calculated does not "
                      "match the signature you provided", err)
        self.assertFalse(os.path.exists(self.spored.function_dir("sig")))
        # an unknown key id
        rc, _, err = self.aws("list-functions", key_id="AKIDUNKNOWN", ok=False)
        self.assertIn("An error occurred (UnrecognizedClientException) when calling the "
                      "ListFunctions operation: The security token included in the request is "
                      "invalid", err)
        # unsigned
        rc, _, err = self.aws("list-functions", "--no-sign-request", ok=False)
        self.assertIn("(MissingAuthenticationTokenException) when calling the ListFunctions "
                      "operation: Missing Authentication Token", err)
        # another region in the credential scope
        rc, _, err = self.aws("list-functions", "--region", "us-west-2", ok=False)
        self.assertIn("(InvalidSignatureException)", err)
        self.assertIn("region", err)
        # the second configured key works
        self.aws("list-functions", key_id="AKIDOTHER", secret="other-secret")
        # the keys file is read again when it changes: a key added works without a restart...
        keys = os.path.join(self.keys_dir, "keys")
        with open(keys) as f:
            original = f.read()
        self.addCleanup(self.restore_keys, keys, original)
        with open(keys, "a") as f:
            f.write("AKIDADDED:added-secret\n")
        self.aws("list-functions", key_id="AKIDADDED", secret="added-secret")
        # ...and a file others may read is not used at all
        os.chmod(keys, 0o644)
        rc, _, err = self.aws("list-functions", ok=False)
        self.assertIn("(UnrecognizedClientException)", err)
        self.assertIn("make it 0600", self.spored.log())
        os.chmod(keys, 0o600)
        self.aws("list-functions")

    @staticmethod
    def restore_keys(path, data):
        with open(path, "w") as f:
            f.write(data)
        os.chmod(path, 0o600)


class TestBoto3(LambdaCase):
    @classmethod
    def setUpClass(cls):
        cls.start_spored()

    def create(self, c, name, version=1, **kw):
        args = dict(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                    Code={"ZipFile": fn_zip(version)})
        args.update(kw)
        return c.create_function(**args)

    def test_shapes_and_errors(self):
        c = self.client()
        cfg = self.create(c, "b-shapes", Publish=True, Description="d1",
                          Environment={"Variables": {"GREETING": "yo"}})
        self.assertEqual(cfg["Version"], "1")
        self.assertEqual(cfg["ResponseMetadata"]["HTTPStatusCode"], 201)
        self.assertEqual(cfg["Description"], "d1")
        # the exceptions boto3 users catch
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.get_function(FunctionName="b-nope")
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.get_function(FunctionName="b-shapes", Qualifier="7")
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.get_function(FunctionName="arn:aws:lambda:%s:999999999999:function:b-shapes" %
                           REGION)
        with self.assertRaises(c.exceptions.ResourceConflictException):
            self.create(c, "b-shapes")
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.update_function_configuration(FunctionName="b-shapes", Runtime="java8")
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.get_function(FunctionName="b-shapes:1", Qualifier="2")
        with self.assertRaises(c.exceptions.InvalidRequestContentException):
            c.invoke(FunctionName="b-shapes", Payload=b"{not json")
        with self.assertRaises(c.exceptions.PreconditionFailedException):
            c.update_function_configuration(FunctionName="b-shapes", Description="x",
                                            RevisionId="00000000-0000-4000-8000-000000000000")
        # names, partial and full ARNs, qualifiers
        arn = "arn:aws:lambda:%s:%s:function:b-shapes" % (REGION, ACCOUNT)
        for fn in ("b-shapes", arn, "%s:function:b-shapes" % ACCOUNT):
            self.assertEqual(c.get_function_configuration(FunctionName=fn)["FunctionArn"], arn)
        self.assertEqual(c.get_function_configuration(FunctionName=arn + ":1")["Version"], "1")
        # a function error keeps 200, with X-Amz-Function-Error and Lambda's error document
        r = c.invoke(FunctionName="b-shapes", Payload=json.dumps({"fail": 1}), LogType="Tail")
        self.assertEqual(r["StatusCode"], 200)
        self.assertEqual(r["FunctionError"], "Unhandled")
        body = json.loads(r["Payload"].read())
        self.assertEqual(body["errorType"], "ValueError")
        self.assertEqual(body["errorMessage"], "asked to fail")
        self.assertIsInstance(body["stackTrace"], list)
        self.assertIn("log line of version 1", base64.b64decode(r["LogResult"]).decode())
        # DryRun
        r = c.invoke(FunctionName="b-shapes", InvocationType="DryRun")
        self.assertEqual(r["StatusCode"], 204)
        # configuration update: a new $LATEST, published versions unchanged
        rev = c.get_function_configuration(FunctionName="b-shapes")["RevisionId"]
        u = c.update_function_configuration(FunctionName="b-shapes", MemorySize=512, Timeout=1,
                                            Environment={"Variables": {"GREETING": "new"}},
                                            RevisionId=rev)
        self.assertEqual((u["MemorySize"], u["Timeout"]), (512, 1))
        self.assertNotEqual(u["RevisionId"], rev)
        self.assertEqual(u["CodeSha256"], cfg["CodeSha256"])
        # a new spore version whose code is the previous one's files, hard-linked
        vdirs = sorted(self.spored.version_dirs("b-shapes"), key=int)
        st = [os.stat(os.path.join(self.spored.function_dir("b-shapes"), "versions", v, "code",
                                   "app.py")) for v in vdirs[-2:]]
        self.assertEqual(st[0].st_ino, st[1].st_ino)
        r = json.loads(c.invoke(FunctionName="b-shapes")["Payload"].read())
        self.assertEqual(r["env"], "new")
        r = json.loads(c.invoke(FunctionName="b-shapes", Qualifier="1")["Payload"].read())
        self.assertEqual(r["env"], "yo")
        # a timeout: Sandbox.Timedout, as Lambda reports it
        r = c.invoke(FunctionName="b-shapes", Payload=json.dumps({"sleep": 3}))
        self.assertEqual(r["FunctionError"], "Unhandled")
        body = json.loads(r["Payload"].read())
        self.assertEqual(body["errorType"], "Sandbox.Timedout")
        self.assertIn("Task timed out after 1.00 seconds", body["errorMessage"])
        # concurrency settings
        self.assertEqual(c.put_function_concurrency(
            FunctionName="b-shapes", ReservedConcurrentExecutions=4)[
                "ReservedConcurrentExecutions"], 4)
        self.assertEqual(c.get_function(FunctionName="b-shapes")["Concurrency"],
                         {"ReservedConcurrentExecutions": 4})
        self.assertEqual(self.spored.info("b-shapes")["scaling"]["max_instances"], 4)
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.put_provisioned_concurrency_config(FunctionName="b-shapes", Qualifier="$LATEST",
                                                 ProvisionedConcurrentExecutions=1)
        p = c.put_provisioned_concurrency_config(FunctionName="b-shapes", Qualifier="1",
                                                 ProvisionedConcurrentExecutions=2)
        self.assertEqual(p["ResponseMetadata"]["HTTPStatusCode"], 202)
        self.assertEqual(p["Status"], "READY")
        self.assertEqual(self.spored.info("b-shapes")["scaling"]["min_instances"], 2)
        self.assertEqual(c.get_provisioned_concurrency_config(
            FunctionName="b-shapes", Qualifier="1")["RequestedProvisionedConcurrentExecutions"], 2)
        c.delete_provisioned_concurrency_config(FunctionName="b-shapes", Qualifier="1")
        with self.assertRaises(c.exceptions.ProvisionedConcurrencyConfigNotFoundException):
            c.get_provisioned_concurrency_config(FunctionName="b-shapes", Qualifier="1")
        self.assertEqual(self.spored.info("b-shapes")["scaling"]["min_instances"], 0)
        c.delete_function_concurrency(FunctionName="b-shapes")
        self.assertNotIn("Concurrency", c.get_function(FunctionName="b-shapes"))
        c.delete_function(FunctionName="b-shapes")

    def test_paging(self):
        c = self.client()
        names = ["b-page-%d" % i for i in range(5)]
        for n in names:
            self.create(c, n)
        seen, marker, pages = [], None, 0
        while True:
            kw = {"MaxItems": 2}
            if marker:
                kw["Marker"] = marker
            r = c.list_functions(**kw)
            pages += 1
            self.assertLessEqual(len(r["Functions"]), 2)
            seen += [f["FunctionName"] for f in r["Functions"]]
            marker = r.get("NextMarker")
            if not marker:
                break
        self.assertEqual([s for s in seen if s.startswith("b-page-")], names)
        self.assertEqual(len(seen), len(set(seen)))
        self.assertGreaterEqual(pages, 3)
        # the paginator (what the CLI uses) gives the same
        got = [f["FunctionName"] for p in c.get_paginator("list_functions").paginate(
            PaginationConfig={"PageSize": 2}) for f in p["Functions"]]
        self.assertEqual(got, seen)
        # versions and aliases page too
        for i in range(3):
            c.update_function_configuration(FunctionName=names[0], Description="d%d" % i)
            c.publish_version(FunctionName=names[0])
        vs = [v["Version"] for p in c.get_paginator("list_versions_by_function").paginate(
            FunctionName=names[0], PaginationConfig={"PageSize": 2}) for v in p["Versions"]]
        self.assertEqual(vs, ["$LATEST", "1", "2", "3"])
        for a in ("zeta", "alpha", "mid"):
            c.create_alias(FunctionName=names[0], Name=a, FunctionVersion="2")
        al = [a["Name"] for p in c.get_paginator("list_aliases").paginate(
            FunctionName=names[0], PaginationConfig={"PageSize": 1}) for a in p["Aliases"]]
        self.assertEqual(al, ["alpha", "mid", "zeta"])
        for n in names:
            c.delete_function(FunctionName=n)

    def test_aliases_and_versions(self):
        c = self.client()
        self.create(c, "b-alias", version=1)
        self.assertEqual(c.publish_version(FunctionName="b-alias")["Version"], "1")
        c.update_function_code(FunctionName="b-alias", ZipFile=fn_zip(2))
        v2 = c.publish_version(FunctionName="b-alias", CodeSha256=c.get_function_configuration(
            FunctionName="b-alias")["CodeSha256"])
        self.assertEqual(v2["Version"], "2")
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.publish_version(FunctionName="b-alias", CodeSha256="AAAA")
        c.update_function_code(FunctionName="b-alias", ZipFile=fn_zip(3))
        a = c.create_alias(FunctionName="b-alias", Name="canary", FunctionVersion="1",
                           RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}})
        self.assertEqual(a["RoutingConfig"], {"AdditionalVersionWeights": {"2": 0.5}})
        runs = {}
        for _ in range(40):
            r = c.invoke(FunctionName="b-alias", Qualifier="canary")
            ver = json.loads(r["Payload"].read())["version"]
            runs.setdefault(r["ExecutedVersion"], set()).add(ver)
        self.assertEqual(runs.get("1"), {1}, runs)
        self.assertEqual(runs.get("2"), {2}, runs)
        with self.assertRaises(c.exceptions.ResourceConflictException):
            c.create_alias(FunctionName="b-alias", Name="canary", FunctionVersion="1")
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.create_alias(FunctionName="b-alias", Name="x", FunctionVersion="9")
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.create_alias(FunctionName="b-alias", Name="123", FunctionVersion="1")
        with self.assertRaises(c.exceptions.ResourceConflictException):
            c.delete_function(FunctionName="b-alias", Qualifier="2")
        rev = c.get_alias(FunctionName="b-alias", Name="canary")["RevisionId"]
        u = c.update_alias(FunctionName="b-alias", Name="canary", FunctionVersion="2",
                           RoutingConfig={"AdditionalVersionWeights": {}}, RevisionId=rev)
        self.assertNotIn("RoutingConfig", u)
        with self.assertRaises(c.exceptions.PreconditionFailedException):
            c.update_alias(FunctionName="b-alias", Name="canary", RevisionId=rev)
        r = c.invoke(FunctionName="b-alias:canary")
        self.assertEqual((r["ExecutedVersion"], json.loads(r["Payload"].read())["version"]),
                         ("2", 2))
        # version 1 is free now: deleted; invoking it then is a missing resource
        c.delete_function(FunctionName="b-alias", Qualifier="1")
        with self.assertRaises(c.exceptions.ResourceNotFoundException):
            c.invoke(FunctionName="b-alias", Qualifier="1")
        with self.assertRaises(c.exceptions.InvalidParameterValueException):
            c.delete_function(FunctionName="b-alias", Qualifier="$LATEST")

        # an Event invocation of a published version that is not live runs that version
        r = c.invoke(FunctionName="b-alias", Qualifier="2", InvocationType="Event",
                     Payload=json.dumps({"marker": "pinned-event"}))
        self.assertEqual(r["StatusCode"], 202)
        self.assertTrue(self.wait_log("b-alias", "log line of version 2: pinned-event"))

        # published versions and aliases survive a restart
        self.spored.restart()
        r = c.invoke(FunctionName="b-alias", Qualifier="canary")
        self.assertEqual((r["ExecutedVersion"], json.loads(r["Payload"].read())["version"]),
                         ("2", 2))
        self.assertEqual([v["Version"] for v in c.list_versions_by_function(
            FunctionName="b-alias")["Versions"]], ["$LATEST", "2"])
        c.delete_alias(FunctionName="b-alias", Name="canary")
        c.delete_alias(FunctionName="b-alias", Name="canary")  # not there: fine, as Lambda
        self.assertEqual(c.list_aliases(FunctionName="b-alias")["Aliases"], [])
        c.delete_function(FunctionName="b-alias")

    def test_queue_full_is_throttling(self):
        c = self.client()
        self.create(c, "b-busy", Timeout=30)
        c.put_function_concurrency(FunctionName="b-busy", ReservedConcurrentExecutions=1)
        r = self.spored.api("PATCH", "/v1/functions/b-busy",
                            {"queue_max": 1, "queue_timeout_ms": 500})
        self.assertStatus(r, 200)
        c.invoke(FunctionName="b-busy")  # warm
        errors, done = [], []

        def slow():
            try:
                self.client().invoke(FunctionName="b-busy", Payload=json.dumps({"sleep": 2}))
                done.append(1)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
        ts = [threading.Thread(target=slow) for _ in range(2)]
        for t in ts:
            t.start()
        # The one instance is busy for 2 s: another invocation finds the queue full (429 at
        # once) or waits past queue_timeout_ms in it (429 after 0.5 s).
        busy = wait_for(lambda: any(i["state"] == "busy" for i in
                                    self.spored.info("b-busy").get("instances", [])), 20, 0.02)
        self.assertTrue(busy, "no invocation reached the instance")
        with self.assertRaises(c.exceptions.TooManyRequestsException) as cm:
            c.invoke(FunctionName="b-busy")
        resp = cm.exception.response
        self.assertEqual(resp["ResponseMetadata"]["HTTPStatusCode"], 429)
        self.assertEqual(resp["ResponseMetadata"]["HTTPHeaders"].get("retry-after"), "1")
        self.assertIn(resp.get("Reason"), ("ReservedFunctionConcurrentInvocationLimitExceeded",
                                           "ConcurrentInvocationLimitExceeded"))
        for t in ts:
            t.join(30)
        c.delete_function(FunctionName="b-busy")

    def test_raw_signing(self):
        """A signed request replayed with another body, or signed too long ago, is refused."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        c = self.client()
        self.create(c, "b-raw")
        url = self.endpoint + "/2015-03-31/functions/b-raw/invocations"
        req = AWSRequest(method="POST", url=url, data=b'{"marker": "signed"}')
        SigV4Auth(Credentials(KEY_ID, SECRET), "lambda", REGION).add_auth(req)
        hdrs = dict(req.headers.items())

        def send(body, headers):
            conn = http.client.HTTPConnection("127.0.0.1", self.spored.port, timeout=30)
            try:
                conn.request("POST", "/2015-03-31/functions/b-raw/invocations", body=body,
                             headers=headers)
                r = conn.getresponse()
                return r.status, dict((k.lower(), v) for k, v in r.getheaders()), r.read()
            finally:
                conn.close()
        st, h, body = send(b'{"marker": "signed"}', hdrs)
        self.assertEqual(st, 200, body)
        self.assertEqual(h["x-amz-executed-version"], "$LATEST")
        self.assertTrue(h.get("x-amzn-requestid"))
        st, h, body = send(b'{"marker": "forged"}', hdrs)
        self.assertEqual(st, 403)
        self.assertEqual(h["x-amzn-errortype"], "InvalidSignatureException")
        self.assertEqual(json.loads(body)["Type"], "User")
        # signed 20 minutes ago
        old = AWSRequest(method="POST", url=url, data=b"{}")
        signer = SigV4Auth(Credentials(KEY_ID, SECRET), "lambda", REGION)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 1200))
        old.context["timestamp"] = stamp
        old.headers["X-Amz-Date"] = stamp
        cr = signer.canonical_request(old)
        sts = signer.string_to_sign(old, cr)
        old.headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, " \
            "Signature=%s" % (KEY_ID, signer.credential_scope(old),
                              signer.signed_headers(signer.headers_to_sign(old)),
                              signer.signature(sts, old))
        st, h, body = send(b"{}", dict(old.headers.items()))
        self.assertEqual(st, 403)
        self.assertEqual(h["x-amzn-errortype"], "InvalidSignatureException")
        self.assertIn("Signature expired", json.loads(body)["message"])
        # the API socket needs no signature (local administration)
        r = self.spored.api("GET", "/2015-03-31/functions/")
        self.assertStatus(r, 200)
        self.assertIn("b-raw", [f["FunctionName"] for f in r.json()["Functions"]])
        c.delete_function(FunctionName="b-raw")

    def test_v1_and_lambda_agree(self):
        """A function deployed through /v1 is visible to the Lambda API and the reverse."""
        c = self.client()
        self.spored.deploy_ok("b-native-v1", harness.py_package(
            "def main(event, context):\n    return {'from': 'v1'}\n"))
        r = c.invoke(FunctionName="b-native-v1")
        self.assertEqual(json.loads(r["Payload"].read()), {"from": "v1"})
        cfg = c.get_function_configuration(FunctionName="b-native-v1")
        self.assertEqual(cfg["Runtime"], "python3")
        self.assertEqual(cfg["Handler"], "fn.main")
        self.create(c, "b-from-lambda", MemorySize=192)
        info = self.spored.info("b-from-lambda")
        self.assertEqual((info["runtime"], info["handler"], info["memory_mb"]),
                         ("python3", "app.handler", 192))
        self.assertEqual(self.spored.invoke_ok("b-from-lambda", {}).json()["version"], 1)
        c.delete_function(FunctionName="b-native-v1")
        c.delete_function(FunctionName="b-from-lambda")


class TestAllowUnsigned(LambdaCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls, {"lambda_allow_unsigned": "yes"})
        cls.endpoint = "http://127.0.0.1:%d" % cls.spored.port

    def test_unsigned_accepted(self):
        rc, out, err = self.aws("list-functions", "--no-sign-request")
        self.assertEqual(out, {"Functions": []})


class TestNoKeys(LambdaCase):
    @classmethod
    def setUpClass(cls):
        cls.spored = Spored.for_class(cls)
        cls.endpoint = "http://127.0.0.1:%d" % cls.spored.port

    def test_refused_without_keys(self):
        rc, _, err = self.aws("list-functions", ok=False)
        self.assertIn("(UnrecognizedClientException)", err)
        self.assertIn("lambda_access_keys", err)


def main():
    missing = [p for p, ok in (("awscli (/usr/bin/aws)", os.access(AWS, os.X_OK)),
                               ("python3-boto3", boto3 is not None)) if not ok]
    if missing and os.geteuid() == 0:
        print("skipped: %s not installed (tools/install-deps.sh installs them)" %
              ", ".join(missing))
        sys.exit(77)
    try:
        harness.main()
    finally:
        shutil.rmtree(_AWS_HOME, ignore_errors=True)


if __name__ == "__main__":
    main()
