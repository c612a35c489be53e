#!/bin/sh
# spore's exec example, in shell: the event arrives on stdin, the response (JSON) goes to
# stdout, and stderr is the function's log. Exit status 0 means success. Handler "handler.sh".
#   {"name": N} -> {"message": "hello, N", "function", "request_id"}
#   {"fail": S} -> exits with status S (a function_error carrying the status and stderr)
event=$(cat)
field() {
	printf '%s' "$event" | sed -n "s/.*\"$1\"[[:space:]]*:[[:space:]]*\"\{0,1\}\([^\",}\\]*\).*/\1/p"
}
fail=$(field fail)
if [ -n "$fail" ]; then
	echo "handler.sh: failing with status $fail as asked" >&2
	exit "$fail"
fi
name=$(field name)
echo "handler.sh: request $SPORE_REQUEST_ID" >&2
printf '{"message": "hello, %s", "function": "%s", "request_id": "%s"}\n' \
	"${name:-world}" "$AWS_LAMBDA_FUNCTION_NAME" "$SPORE_REQUEST_ID"
