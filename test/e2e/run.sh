#!/bin/bash
# End-to-end test of the gated package on a booted Debian bookworm under
# systemd-nspawn: install, start, D-Bus and its policy, MQTT, stop, crash
# restart, upgrade with an edited conffile, purge.
#
#   test/e2e/run.sh [PATH/TO/gated_VERSION_amd64.deb]
#
# Without an argument it takes the newest dist/gated_*_amd64.deb, building
# one (packaging/build-deb.sh amd64) when there is none.
#
# Runs as root. Needs debootstrap and systemd-container (systemd-nspawn).
# The debootstrapped rootfs is cached under $GATED_E2E_CACHE (default
# /var/cache/gated-e2e), keyed by a hash of its recipe, so a machine that
# keeps it skips the 1-4 minute debootstrap; each run boots a throw-away
# overlay on top of it. The container has a network of its own (loopback
# only: its mosquitto is on its own localhost:1883) and is powered off on
# exit, whatever happens.
#
# Prints PASS/FAIL per check and "N passed, N failed"; exits 1 on any
# failure, 2 when the test could not run at all.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cache=${GATED_E2E_CACHE:-/var/cache/gated-e2e}
mirror=${GATED_E2E_MIRROR:-http://deb.debian.org/debian}
suite=bookworm
packages=systemd,systemd-sysv,dbus,mosquitto,mosquitto-clients,procps
prefix=tw/rocksaying
t0=$(date +%s)

log() { printf 'e2e: [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }
die() { log "ERROR: $*" >&2; exit 2; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn nsenter; do
	command -v "$tool" >/dev/null || die "$tool is missing: apt-get install debootstrap systemd-container util-linux"
done

deb=${1:-}
if [ -z "$deb" ]; then
	deb=$(ls -t "$root"/dist/gated_*_amd64.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		log "no dist/gated_*_amd64.deb: building one"
		LINTIAN=0 "$root/packaging/build-deb.sh" amd64
		deb=$(ls -t "$root"/dist/gated_*_amd64.deb | head -n 1)
	fi
fi
[ -f "$deb" ] || die "no such package: $deb"
log "package $deb"

# --- the cached rootfs ------------------------------------------------------
recipe="v1 $suite minbase $packages $mirror"
key=$(printf '%s' "$recipe" | sha256sum | cut -c1-16)
base=$cache/rootfs-$key
mkdir -p "$cache"
# One debootstrap at a time: a second run waits for the first one's rootfs.
exec 9>"$cache/.lock"
flock 9
if [ ! -e "$base/.gated-e2e-complete" ]; then
	log "debootstrap $suite ($packages) into $base (cached for later runs)"
	rm -rf "$base.tmp"
	if ! debootstrap --variant=minbase --include="$packages" "$suite" "$base.tmp" "$mirror" > "$cache/debootstrap-$key.log" 2>&1; then
		tail -n 20 "$cache/debootstrap-$key.log" >&2
		die "debootstrap failed (log: $cache/debootstrap-$key.log)"
	fi
	chroot "$base.tmp" apt-get clean
	printf '%s\n' "$recipe" > "$base.tmp/.gated-e2e-complete"
	rm -rf "$base"
	mv "$base.tmp" "$base"
else
	log "cached rootfs $base"
fi
exec 9>&-

# --- a throw-away copy of it --------------------------------------------------
run=$(mktemp -d /var/tmp/gated-e2e.XXXXXX)
ct=$run/root
machine=gated-e2e-$$
nspawn_pid=
cpid=
overlay=no
mkdir -p "$ct" "$run/upper" "$run/work"
if mount -t overlay overlay -o "lowerdir=$base,upperdir=$run/upper,workdir=$run/work" "$ct" 2>/dev/null; then
	overlay=yes
else
	log "overlayfs unavailable: copying the rootfs"
	cp -a "$base/." "$ct/"
fi

cleanup() {
	local rc=$?
	set +e
	# Quietly: the summary stays the last line of the output.
	if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
		[ -n "$cpid" ] && nsenter -t "$cpid" -a -- /bin/systemctl poweroff --no-block >/dev/null 2>&1
		for _ in $(seq 1 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.2; done
		kill -0 "$nspawn_pid" 2>/dev/null && kill -KILL "$nspawn_pid"
		wait "$nspawn_pid" 2>/dev/null
	fi
	[ "$overlay" = yes ] && umount "$ct"
	if [ "${GATED_E2E_KEEP:-0}" = 1 ]; then
		log "kept $run (console: $run/console.log)" >&2
	else
		rm -rf "$run"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Commands run inside the container's namespaces, as root or as a user, with
# a clean environment.
ct_env=(env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 SYSTEMD_PAGER= SYSTEMD_COLORS=0)
in_ct() { nsenter -t "$cpid" -a -- "${ct_env[@]}" "$@"; }
as_user() {
	local user=$1; shift
	nsenter -t "$cpid" -a -- "${ct_env[@]}" setpriv --reuid="$user" --regid="$user" --init-groups "$@"
}

# --- checks -------------------------------------------------------------------
# Under pipefail, "cmd | grep -q" fails when grep exits at its first match
# and cmd dies of SIGPIPE: the checks grep captured output instead.
passed=0
failed=0
pass() { passed=$((passed + 1)); log "PASS: $*"; }
fail() { failed=$((failed + 1)); log "FAIL: $*"; }
# check NAME CMD...: PASS when CMD succeeds. Never redirect a check's output
# (its PASS line would go with it): wrap the command in a function instead.
check() {
	local name=$1; shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
# wait_for SECONDS CMD...: poll CMD every 0.2 s until it succeeds.
wait_for() {
	local deadline=$(($(date +%s) + $1)); shift
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}
prop() { in_ct systemctl show -P "$1" gated.service; }
# gate_state: the state word of GetStatus's document, called as root.
gate_state() {
	in_ct busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate GetStatus 2>/dev/null |
		tr -d '\\' | grep -o '"state":"[a-z]*"' | cut -d'"' -f4
}
state_is() { [ "$(gate_state)" = "$1" ]; }
has_state() { [ -n "$(gate_state)" ]; }
status_has() {
	local doc
	doc=$(in_ct busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate GetStatus | tr -d '\\')
	grep -q -- "$1" <<<"$doc"
}
no_gated_process() { ! in_ct pgrep -x gated >/dev/null; }
call_as() { # call_as USER METHOD: a gate command over the system bus
	local user=$1 method=$2
	if [ "$user" = root ]; then
		in_ct busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate "$method"
	else
		as_user "$user" busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate "$method"
	fi
}
# openings: the openings counter of GetStatus's document.
openings() {
	in_ct busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate GetStatus 2>/dev/null |
		tr -d '\\' | grep -o '"openings":[0-9]*' | cut -d: -f2
}
openings_are() { [ "$(openings)" = "$1" ]; }
state_file_has() { in_ct grep -q -- "$1" /var/lib/gated/state.json; }
retained() { in_ct mosquitto_sub -h 127.0.0.1 -C 1 -W 5 -t "$prefix/$1"; }
retained_has() { local m; m=$(retained "$1") && grep -q -- "$2" <<<"$m"; }

# --- boot -----------------------------------------------------------------------
cp "$deb" "$ct/root/gated.deb"
# debootstrap writes no /etc/hosts: without it "localhost" resolves nowhere.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > "$ct/etc/hosts"
# The test broker: anonymous on 1883, user gate with password s3cret on
# 1884 (for the credential check). Debian leaves set_tcp_nodelay off (a
# 40 ms tail on QoS 1).
cat > "$ct/etc/mosquitto/conf.d/e2e.conf" <<'EOF'
set_tcp_nodelay true
per_listener_settings true
listener 1883 127.0.0.1
allow_anonymous true
listener 1884 127.0.0.1
allow_anonymous false
password_file /etc/mosquitto/e2e.passwd
EOF
cat > "$ct/root/gated-e2e.toml" <<'EOF'
# The e2e test's configuration: a simulated gate, the container's mosquitto
# and system bus.
[gate]
name = "e2e"
travel_timeout = "20s"

[gpio]
driver = "sim"

[sim]
travel_time = "2s"

[mqtt]
broker = "tcp://127.0.0.1:1883"

[dbus]
bus = "system"
EOF

log "booting $machine"
# --register=no --keep-unit: no machined or systemd on the host to talk to.
systemd-nspawn --boot --directory="$ct" --machine="$machine" --register=no --keep-unit \
	--private-network --console=pipe </dev/null >"$run/console.log" 2>&1 &
nspawn_pid=$!
find_init() { cpid=$(pgrep -P "$nspawn_pid" -x systemd | head -n 1); [ -n "$cpid" ]; }
wait_for 30 find_init || { tail -n 30 "$run/console.log" >&2; die "the container's systemd did not start"; }
booted() { local s; s=$(in_ct systemctl is-system-running --wait 2>/dev/null); grep -qE '^(running|degraded)$' <<<"$s"; }
wait_for 90 booted || { tail -n 30 "$run/console.log" >&2; die "$machine did not boot"; }
in_ct mosquitto_passwd -b -c /etc/mosquitto/e2e.passwd gate s3cret
in_ct chown mosquitto: /etc/mosquitto/e2e.passwd
in_ct systemctl restart mosquitto.service
wait_for 20 in_ct systemctl is-active --quiet mosquitto.service || die "mosquitto did not start in $machine"
log "booted: $(in_ct systemctl is-system-running)"

# --- install: the provisioned config is kept, the unit enabled and started ---
in_ct mkdir -p /etc/gated
in_ct cp /root/gated-e2e.toml /etc/gated/gated.toml
if in_ct dpkg --force-confold -i /root/gated.deb > "$run/dpkg-install.log" 2>&1; then
	pass "dpkg -i installs the package"
else
	cat "$run/dpkg-install.log" >&2
	fail "dpkg -i installs the package"
	die "cannot go on without the package"
fi
check "user gated and groups gate, gpio exist" \
	in_ct sh -c '{ getent passwd gated && getent group gate && getent group gpio; } >/dev/null'
check "unit enabled on install" in_ct systemctl is-enabled --quiet gated.service
check "unit active (running) after READY=1" wait_for 10 in_ct systemctl is-active --quiet gated.service
if ! in_ct systemctl is-active --quiet gated.service; then
	in_ct systemctl status --no-pager -n 30 gated.service >&2 || true
fi
check "first start succeeded (NRestarts=0: user, bus policy ready before start)" test "$(prop NRestarts)" = 0
check "provisioned /etc/gated/gated.toml kept (--force-confold)" \
	in_ct grep -q 'name = "e2e"' /etc/gated/gated.toml
status_line() { in_ct systemctl status --no-pager gated.service | grep -E '^ +Status: ".+"'; }
if line=$(status_line); then pass "systemctl status shows the STATUS= line:${line#*Status:}"; else fail "systemctl status shows the STATUS= line"; fi
check "watchdog armed (WatchdogUSec=10s)" test "$(prop WatchdogUSec)" = 10s
exposure=$(in_ct systemd-analyze security gated.service 2>/dev/null | sed -n 's/^.*Overall exposure level for gated.service: \([0-9.]*\).*$/\1/p')
# --threshold is the exposure level times ten: 20 is SPEC.md's 2.0.
exposure_ok() { in_ct systemd-analyze security --threshold=20 gated.service >/dev/null 2>&1; }
check "systemd-analyze security gated.service: ${exposure:-?} <= 2.0" exposure_ok
plain_log_lines() {
	local j
	j=$(in_ct journalctl -u gated.service -o cat --no-pager _COMM=gated)
	grep -q '^level=' <<<"$j" && ! grep -q '^time=' <<<"$j"
}
check "logs to the journal without time stamps (JOURNAL_STREAM)" plain_log_lines
check "runs as user gated with group gpio" \
	in_ct sh -c 'pid=$(systemctl show -P MainPID gated); [ "$(ps -o user=,group= -p "$pid" | tr -s " ")" = "gated gated" ] && grep "^Groups:" /proc/$pid/status | grep -qw "$(getent group gpio | cut -d: -f3)"'

# --- MQTT up; the simulated photo eye clear ---------------------------------------
check "availability retained: online" wait_for 10 retained_has availability '^online$'
# The closing checks below need a clear beam, whatever the simulation starts with.
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/sim" -m clear
check "simulated photo eye clear (status obstructed:false)" wait_for 5 status_has '"obstructed":false'

# --- D-Bus and its policy -----------------------------------------------------------
wait_for 10 in_ct busctl --system status tw.rocksaying.Gate >/dev/null || true
check "GetStatus answers with a state" wait_for 10 has_state
if call_as root Open >/dev/null 2>"$run/err"; then
	pass "root: Open accepted"
else
	fail "root: Open accepted ($(cat "$run/err"))"
fi
check "simulated gate reaches open (GetStatus)" wait_for 15 state_is open
in_ct useradd --system --no-create-home --shell /usr/sbin/nologin alice
if call_as alice Close >/dev/null 2>"$run/err"; then
	fail "alice (not in group gate): Close refused by the bus policy (it was accepted)"
else
	if grep -qi 'denied\|not allowed' "$run/err"; then
		pass "alice (not in group gate): Close refused by the bus policy ($(head -c 120 "$run/err"))"
	else
		fail "alice (not in group gate): Close refused by the bus policy (other error: $(cat "$run/err"))"
	fi
fi
check "the refused Close did not move the gate" state_is open
can_read_status() {
	as_user "$1" busctl --system call tw.rocksaying.Gate /tw/rocksaying/Gate tw.rocksaying.Gate GetStatus >/dev/null
}
check "alice may still read GetStatus" can_read_status alice
gatectl_status_as_alice() { as_user alice gatectl status >/dev/null; }
check "gatectl status as alice (the packaged client)" gatectl_status_as_alice
in_ct usermod -a -G gate alice
if call_as alice Close >/dev/null 2>"$run/err"; then
	pass "alice in group gate: Close accepted"
else
	fail "alice in group gate: Close accepted ($(cat "$run/err"))"
fi
check "simulated gate reaches closed" wait_for 15 state_is closed

# --- MQTT commands ---------------------------------------------------------------------
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/command" -m open
check "MQTT command open: gate reaches open" wait_for 15 state_is open
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/command" -m close
check "MQTT command close: gate reaches closed" wait_for 15 state_is closed
if doc=$(retained status) && grep -q '"state":"closed"' <<<"$doc"; then
	pass "mosquitto_sub -C 1 sees the retained status: $doc"
else
	fail "mosquitto_sub -C 1 sees the retained status (got: ${doc:-nothing})"
fi
check "retained state word: closed" retained_has state '^closed$'

# --- the web panel and the event history --------------------------------------------
# alice (password hunter2, bcrypt as htpasswd -B writes it) may command; the
# panel listens where [web] listen says. No curl in the container: bash's
# /dev/tcp speaks the HTTP/1.0 the checks need.
in_ct sh -c 'printf "%s\n" "alice:\$2y\$04\$.nqscZjsCWn65lDKTu7Vq.UTcb1afOb0Q59pCnTHYrm0f2vg2P/sy" > /etc/gated/web-users && chmod 0644 /etc/gated/web-users'
in_ct sh -c 'printf "\n[web]\nlisten = \"127.0.0.1:8080\"\nusers_file = \"/etc/gated/web-users\"\noperators = [\"alice\"]\n" >> /etc/gated/gated.toml'
in_ct systemctl restart gated.service
# http METHOD PATH [USER:PASSWORD [BODY]]: the answer, headers and body.
http() {
	local auth=""
	[ -n "${3:-}" ] && auth="Authorization: Basic $(printf %s "$3" | base64 -w0)"$'\r\n'
	in_ct bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080 || exit 1
		printf "%s %s HTTP/1.0\r\nHost: 127.0.0.1:8080\r\n%sContent-Length: %d\r\n\r\n%s" "$1" "$2" "$3" "${#4}" "$4" >&3
		cat <&3' http "$1" "$2" "$auth" "${4:-}"
}
http_has() { local a; a=$(http "$@" 2>/dev/null) && grep -q -- "${HTTP_WANT}" <<<"$a"; }
panel_answers() { HTTP_WANT='^ok' http_has GET /healthz; }
check "the web panel answers on [web] listen (127.0.0.1:8080/healthz)" wait_for 15 panel_answers
no_credentials() { HTTP_WANT='^HTTP/1.[01] 401' http_has POST /api/command "" '{"command":"open"}'; }
check "POST /api/command without credentials: 401" no_credentials
web_open() { HTTP_WANT='"ok":true' http_has POST /api/command alice:hunter2 '{"command":"open"}'; }
check "POST /api/command as operator alice: ok" web_open
check "web command open: gate reaches open" wait_for 15 state_is open
history_has_web_open() { HTTP_WANT='"command":"open","source":"web","who":"alice","ok":true' http_has GET '/api/events?limit=50' alice:hunter2; }
check "the history has alice's open (web)" wait_for 5 history_has_web_open
events_as_root() { local o; o=$(in_ct gatectl events 50) && grep -q 'open by alice (web): ok' <<<"$o"; }
check "gatectl events (D-Bus GetEvents) shows it" events_as_root
check "the history lives in StateDirectory" in_ct test -s /var/lib/gated/history.db
in_ct systemctl restart gated.service
check "after systemctl restart: the panel answers" wait_for 15 panel_answers
check "after systemctl restart: alice's open still in the history" history_has_web_open
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/command" -m '{"command":"close","id":"e2e-phone"}'
check "MQTT close: gate reaches closed" wait_for 15 state_is closed
history_has_mqtt_close() { HTTP_WANT='"command":"close","source":"mqtt","who":"e2e-phone"' http_has GET '/api/events?limit=50' alice:hunter2; }
check "the history has the MQTT close with its id" wait_for 5 history_has_mqtt_close
# This section's two restarts count towards StartLimitBurst=5 in 60 s; the
# restarts below were paced without them.
in_ct systemctl reset-failed gated.service

# --- watchdog kept fed, clean stop, crash restart ------------------------------------
check "no restart so far (watchdog pinged, NRestarts=0)" test "$(prop NRestarts)" = 0
# Two messages: the retained online, then the offline of the clean stop.
in_ct sh -c "exec mosquitto_sub -h 127.0.0.1 -v -C 2 -W 20 -t '$prefix/availability' > /run/e2e-availability.log" &
sub_pid=$!
wait_for 5 in_ct grep -q online /run/e2e-availability.log || true
check "systemctl stop gated" in_ct systemctl stop gated.service
check "clean stop: exit status 0, result success" \
	test "$(prop ExecMainStatus)/$(prop Result)" = 0/success
check "stop publishes offline on availability" wait_for 10 in_ct grep -q 'availability offline' /run/e2e-availability.log
wait "$sub_pid" 2>/dev/null || true
check "systemctl start gated" in_ct systemctl start gated.service
old_pid=$(prop MainPID)
old_restarts=$(prop NRestarts)
in_ct kill -KILL "$old_pid"
restarted() {
	local pid
	pid=$(prop MainPID)
	[ "$pid" != 0 ] && [ "$pid" != "$old_pid" ] && in_ct systemctl is-active --quiet gated.service
}
check "kill -9 of MainPID: restarted with a new MainPID" wait_for 15 restarted
check "kill -9 of MainPID: NRestarts went up" test "$(prop NRestarts)" -gt "$old_restarts"
check "after kill -9: the panel answers" wait_for 15 panel_answers
check "after kill -9: the MQTT close (e2e-phone) still in the history" history_has_mqtt_close
# A hung gate loop: a stopped process sends no WATCHDOG=1, so systemd kills
# it after WatchdogSec=10s and restarts it.
old_pid=$(prop MainPID)
old_restarts=$(prop NRestarts)
in_ct kill -STOP "$old_pid"
stopped_at=$(date +%s)
watchdog_fired() { local j; j=$(in_ct journalctl -u gated.service --no-pager); grep -q 'gated.service: Watchdog timeout' <<<"$j"; }
if wait_for 30 watchdog_fired; then
	pass "SIGSTOPped gated: systemd's watchdog fired ($(($(date +%s) - stopped_at)) s after SIGSTOP)"
else
	fail "SIGSTOPped gated: systemd's watchdog fired (nothing in the journal after 30 s)"
fi
check "SIGSTOPped gated: restarted with a new MainPID" wait_for 15 restarted

# --- state kept across restarts (StateDirectory=gated) -------------------------------
check "/var/lib/gated owned by gated, mode 700" test "$(in_ct stat -c %U:%a /var/lib/gated 2>&1)" = gated:700
count=$(openings)
if [ -n "$count" ] && [ "$count" -ge 2 ]; then
	pass "the status counts openings: $count"
else
	fail "the status counts openings (got: ${count:-nothing}, want at least 2)"
fi
check "the state file holds the openings" wait_for 10 state_file_has "\"openings\": $count"
check "state file owned by gated" test "$(in_ct stat -c %U /var/lib/gated/state.json 2>&1)" = gated
in_ct systemctl restart gated.service
check "systemctl restart gated: the openings survive" wait_for 15 openings_are "$count"
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/command" -m open
check "one more opening after the restart" wait_for 15 openings_are "$((count + 1))"
check "  ... written to the state file" wait_for 10 state_file_has "\"openings\": $((count + 1))"
# The restarts above count against StartLimitBurst=5 in 60 s: start afresh.
in_ct systemctl reset-failed gated.service
kill_pid=$(prop MainPID)
in_ct kill -KILL "$kill_pid"
killed_and_back() { local pid; pid=$(prop MainPID); [ "$pid" != 0 ] && [ "$pid" != "$kill_pid" ] && openings_are "$((count + 1))"; }
check "kill -9: restarted, the openings survive" wait_for 20 killed_and_back
in_ct mosquitto_pub -h 127.0.0.1 -q 1 -t "$prefix/command" -m close
check "closed again after the kill" wait_for 15 state_is closed

# --- upgrade: the edited conffile is kept ---------------------------------------------
in_ct sed -i 's/^name = "e2e"$/name = "e2e-edited"/' /etc/gated/gated.toml
in_ct systemctl restart gated.service
if in_ct dpkg -i /root/gated.deb > "$run/dpkg-upgrade.log" 2>&1; then
	pass "dpkg -i over the installed package (upgrade path)"
else
	cat "$run/dpkg-upgrade.log" >&2
	fail "dpkg -i over the installed package (upgrade path)"
fi
check "upgrade keeps the edited conffile" in_ct grep -q 'name = "e2e-edited"' /etc/gated/gated.toml
check "unit active after the upgrade" wait_for 10 in_ct systemctl is-active --quiet gated.service
check "status carries the edited name" wait_for 10 status_has e2e-edited

# --- the MQTT password as a systemd credential -------------------------------------
# Optional (every start above ran without it); once in the credential store,
# gated logs in with it to the broker's password-protected listener.
in_ct sed -i -e 's|^broker = .*|broker = "tcp://127.0.0.1:1884"|' -e '/^broker = /a username = "gate"' /etc/gated/gated.toml
in_ct sh -c 'install -d -m 0700 /etc/credstore && printf "s3cret\n" > /etc/credstore/gated-mqtt-password && chmod 0600 /etc/credstore/gated-mqtt-password'
in_ct systemctl restart gated.service
check "credential mqtt-password handed to gated alone" \
	test "$(in_ct stat -c %U:%a /run/credentials/gated.service/mqtt-password 2>&1)" = gated:400
online_with_password() {
	local m
	m=$(in_ct mosquitto_sub -h 127.0.0.1 -p 1884 -u gate -P s3cret -C 1 -W 5 -t "$prefix/availability") &&
		grep -q '^online$' <<<"$m"
}
check "gated logs in to the password-protected broker with the credential" wait_for 15 online_with_password

# --- purge -----------------------------------------------------------------------------------
# The administrator's files that README.md puts beside the conffile.
in_ct sh -c 'printf "s3cret\n" > /etc/gated/mqtt-password && touch /etc/gated/mqtt-ca.pem'
in_ct dpkg -L gated > "$run/files"
if in_ct dpkg --purge gated > "$run/dpkg-purge.log" 2>&1; then
	pass "dpkg --purge gated"
else
	cat "$run/dpkg-purge.log" >&2
	fail "dpkg --purge gated"
fi
left=$(in_ct sh -c 'while read -r f; do [ -d "$f" ] && continue; [ -e "$f" ] || [ -L "$f" ] && echo "$f"; done; true' < "$run/files")
check "purge leaves none of the package's files${left:+ (left: $(echo $left))}" test -z "$left"
check "purge removes /var/lib/gated" in_ct test ! -e /var/lib/gated
check "purge removes /etc/gated, with the password_file and certificate in it" in_ct test ! -e /etc/gated
check "purge removes the MQTT password credential" in_ct test ! -e /etc/credstore/gated-mqtt-password
check "purge removes /usr/share/doc/gated" in_ct test ! -e /usr/share/doc/gated
check "unit gone after purge" test "$(in_ct systemctl show -P LoadState gated.service)" = not-found
check "no gated process left" no_gated_process
check "no enablement symlink left" in_ct test ! -e /etc/systemd/system/multi-user.target.wants/gated.service

if [ "$failed" != 0 ]; then
	log "gated's journal in $machine, for the failures above:"
	in_ct journalctl --no-pager -o short-monotonic -u gated.service -n 80 >&2 || true
fi
log "done in $(($(date +%s) - t0))s"
echo "e2e: $passed passed, $failed failed"
[ "$failed" = 0 ]
