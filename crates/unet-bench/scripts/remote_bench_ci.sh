#!/usr/bin/env bash
# CI check of `cargo xtask bench --remote`: starts an sshd on 127.0.0.1 (non-default port, keys
# generated here), runs the bench "on the board" through it with tiny synthetic models, and
# checks that the report came back. Prints "skipped: <why>" and exits 0 when sshd or ssh are
# not installed (CI installs them).
set -euo pipefail
cd "$(dirname "$0")/../../.."

SSHD=$(command -v sshd || true)
[ -z "$SSHD" ] && [ -x /usr/sbin/sshd ] && SSHD=/usr/sbin/sshd
if [ -z "$SSHD" ] || ! command -v ssh >/dev/null || ! command -v scp >/dev/null; then
  echo "skipped: sshd/ssh/scp not installed (apt-get install openssh-server openssh-client)"
  exit 0
fi

WORK=$(mktemp -d)
PORT=${UNET_BENCH_SSH_PORT:-2222}
USER_NAME=$(id -un)
cleanup() {
  if [ -f "$WORK/sshd.pid" ]; then kill "$(cat "$WORK/sshd.pid")" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

ssh-keygen -q -t ed25519 -N '' -f "$WORK/host_key"
ssh-keygen -q -t ed25519 -N '' -f "$WORK/client_key"
# The test key is authorised only for this sshd (its own AuthorizedKeysFile): ~/.ssh is not touched.
cp "$WORK/client_key.pub" "$WORK/authorized_keys"
chmod 600 "$WORK/authorized_keys"
mkdir -p /run/sshd 2>/dev/null || true

cat > "$WORK/sshd_config" <<CONF
ListenAddress 127.0.0.1
Port $PORT
HostKey $WORK/host_key
PidFile $WORK/sshd.pid
AuthorizedKeysFile $WORK/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
CONF
# scp (OpenSSH >= 9) speaks SFTP: give the test sshd its sftp server.
for SFTP in /usr/lib/openssh/sftp-server /usr/libexec/openssh/sftp-server /usr/lib/ssh/sftp-server; do
  if [ -x "$SFTP" ]; then echo "Subsystem sftp $SFTP" >> "$WORK/sshd_config"; break; fi
done
if ! "$SSHD" -f "$WORK/sshd_config" -E "$WORK/sshd.log"; then
  echo "skipped: sshd could not start on 127.0.0.1:$PORT: $(tail -n 3 "$WORK/sshd.log" 2>/dev/null | tr '\n' ' ')"
  exit 0
fi
for _ in $(seq 1 50); do [ -f "$WORK/sshd.pid" ] && break; sleep 0.1; done
if [ ! -f "$WORK/sshd.pid" ]; then
  echo "skipped: sshd did not come up on 127.0.0.1:$PORT: $(tail -n 3 "$WORK/sshd.log" 2>/dev/null | tr '\n' ' ')"
  exit 0
fi
# A key-authenticated login must work before the bench is blamed for anything.
if ! ssh -p "$PORT" -i "$WORK/client_key" -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
  -o "UserKnownHostsFile=$WORK/known_hosts" "$USER_NAME@127.0.0.1" true 2>"$WORK/ssh.err"; then
  echo "skipped: ssh to the test sshd failed: $(tr '\n' ' ' < "$WORK/ssh.err") $(tail -n 3 "$WORK/sshd.log" 2>/dev/null | tr '\n' ' ')"
  exit 0
fi

OUT="$WORK/report"
# One remote run keeps CI short: the cross-built aarch64 binary (already built by the
# `--build-only` step, so no new build) run under qemu-user as the board stand-in; where the
# cross toolchain or qemu is missing, the host binary instead.
if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu \
  && command -v aarch64-linux-gnu-gcc >/dev/null && command -v qemu-aarch64 >/dev/null; then
  cargo xtask bench --remote "$USER_NAME@127.0.0.1" --ssh-port "$PORT" --ssh-identity "$WORK/client_key" \
    --ssh-option "UserKnownHostsFile=$WORK/known_hosts" --remote-dir "$WORK/board-aarch64" \
    --target aarch64-unknown-linux-gnu --remote-wrapper "qemu-aarch64 -L /usr/aarch64-linux-gnu" \
    --synth --synth-fms 4 --synth-size 32 --warmup 1 --runs 3 --slices 2 \
    --backends rust-int8,rust-f32,litert:npu --out "$OUT"
  EXPECT_ARCH=aarch64
else
  echo "note: aarch64 cross toolchain or qemu missing: the --remote test runs the host binary"
  HOST_TARGET=$(rustc -vV | sed -n 's/^host: //p')
  cargo xtask bench --remote "$USER_NAME@127.0.0.1" --ssh-port "$PORT" --ssh-identity "$WORK/client_key" \
    --ssh-option "UserKnownHostsFile=$WORK/known_hosts" --remote-dir "$WORK/board" \
    --target "$HOST_TARGET" --synth --synth-fms 4 --synth-size 32 --warmup 1 --runs 3 --slices 2 \
    --backends rust-int8,rust-f32,litert:cpu,litert:npu --out "$OUT"
  EXPECT_ARCH=$(uname -m)
fi

python3 - "$OUT/report.json" "$EXPECT_ARCH" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
assert report["machine"]["arch"] == sys.argv[2], (report["machine"], sys.argv[2])
rows = {r["backend"]: r for r in report["rows"]}
assert rows["rust-int8"]["status"] == "measured", rows["rust-int8"]
assert rows["rust-int8"]["stats"]["count"] == 3, rows["rust-int8"]["stats"]
print("remote bench report OK:", report["machine"]["arch"], ", ".join(f"{k}={v['status']}" for k, v in rows.items()))
PY
