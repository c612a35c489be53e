# The function of spore's provided example (handler "function.handler"): handler() gets the event
# as $1 and prints the response; a non-zero status is an error whose message is its stderr.
#   {"name": N}   -> {"message": "hello, N", "request_id", "invocations", "deadline_ms"}
#   {"fail": M}   -> an error with message M, through the Runtime API's error route
#   {"sleep": S}  -> sleeps S seconds first (past the function's timeout: spored answers 504)

# The string or number value of a top-level key of the event (enough for an example).
field() {
	local re="\"$2\"[[:space:]]*:[[:space:]]*\"?([^\",}]*)"
	[[ $1 =~ $re ]] && printf '%s' "${BASH_REMATCH[1]}"
	return 0
}

handler() {
	local event=$1 name fail sleep
	fail=$(field "$event" fail)
	if [ -n "$fail" ]; then
		echo "$fail" >&2
		return 1
	fi
	sleep=$(field "$event" sleep)
	if [ -n "$sleep" ]; then
		sleep "$sleep"
	fi
	name=$(field "$event" name)
	echo "handler: request $REQUEST_ID" >&2
	printf '{"message": "hello, %s", "request_id": "%s", "invocations": %d, "deadline_ms": %s}' \
		"${name:-world}" "$REQUEST_ID" "$INVOCATIONS" "$DEADLINE_MS"
}
