#!/usr/bin/env bash
# Make sure the peers Sluice's tests talk to are installed and running on
# loopback: MariaDB (127.0.0.1:3306), NATS with JetStream (127.0.0.1:4222),
# and the OpenSSH server binary (the SFTP tests start a private sshd on a
# free port themselves). Idempotent: running services are left alone.
# Installs missing Debian packages with apt-get when run as root.
set -euo pipefail

log() { printf 'services: %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
	for _ in $(seq 1 100); do
		port_open "$1" && return 0
		sleep 0.2
	done
	return 1
}

need_pkgs=()
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_pkgs+=(mariadb-server)
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need_pkgs+=(nats-server)
[ -x /usr/sbin/sshd ] || need_pkgs+=(openssh-server)
[ -x /usr/lib/openssh/sftp-server ] || [ -x /usr/lib/sftp-server ] || need_pkgs+=(openssh-sftp-server)
command -v python3 >/dev/null 2>&1 || need_pkgs+=(python3)

if [ ${#need_pkgs[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		log "installing ${need_pkgs[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
	else
		log "missing packages: ${need_pkgs[*]} (run as root on Debian to install them, or install them yourself)"
		exit 1
	fi
fi

if port_open 3306; then
	log "MariaDB already listening on 127.0.0.1:3306"
else
	log "starting MariaDB"
	mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
	if [ ! -d /var/lib/mysql/mysql ]; then
		mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
	fi
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address=127.0.0.1
	wait_port 3306 || { log "MariaDB did not start"; exit 1; }
	mariadb -uroot -e "CREATE DATABASE IF NOT EXISTS test" 2>/dev/null || true
fi

if port_open 4222; then
	log "NATS already listening on 127.0.0.1:4222"
else
	log "starting NATS with JetStream"
	mkdir -p /var/lib/nats-server
	start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
		-a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
	wait_port 4222 || { log "NATS did not start"; exit 1; }
fi
log "ready"
