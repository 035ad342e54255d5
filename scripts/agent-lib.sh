# agent-lib.sh: sourced by the measurement scripts that run an agent with
# the shipped policies (dispatcher-cost.sh, dispatcher-profile.sh).

# start_agent BIN DIR PINS starts the agent BIN on DIR/policies, with its
# socket, API policy directory and log in DIR and its pins under
# /sys/fs/bpf/PINS, and returns once it listens, with its pid in $agent.
# An agent that never listens has its log printed, and start_agent fails.
start_agent() {
	"$1" --bpf-dir "$3" --tracing-policy-dir "$2/policies" \
		--server-address "unix://$2/agent.sock" --api-policy-dir "$2/api" \
		--health-server-address "" >"$2/agent.log" 2>&1 &
	agent=$!
	for _ in $(seq 1 120); do
		grep -q "Listening for events" "$2/agent.log" && return 0
		sleep 0.5
	done
	cat "$2/agent.log" >&2
	return 1
}

# stop_agent stops the agent start_agent started, if one runs, and waits
# for it to exit (and so to detach what it loaded).
stop_agent() {
	if [[ -n ${agent:-} ]]; then
		kill "$agent" 2>/dev/null || true
		wait "$agent" 2>/dev/null || true
		agent=
	fi
}
