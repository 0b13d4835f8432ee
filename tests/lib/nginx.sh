# nginx.sh: an nginx on loopback serving a directory over HTTPS with
# HTTP/2, with a CA made at run time.  Shared by the integration tests
# (through tap.sh) and by the benchmarks (bench/pull); POSIX sh, no TAP.
#
# Set NGINX_WORK to a directory of the caller's first: start_nginx keeps its
# configuration, pid, logs and temporary files in $NGINX_WORK/nginx, and
# makes its CA in $NGINX_WORK/ca when make_ca has not been called.  The
# caller stops nginx (stop_nginx) at exit.
#
#   make_ca DIR           a test CA and a server certificate for 127.0.0.1
#                         and localhost, made now; sets CA_FILE
#   start_nginx DOCROOT   nginx serving DOCROOT over HTTP and over HTTPS
#                         with HTTP/2; sets NGINX_HTTP, NGINX_HTTPS,
#                         NGINX_LOG and NGINX_PID
#   nginx_bytes SUBSTRING the body bytes it served for the URIs holding
#                         SUBSTRING (nginx_sync first)
#   stop_nginx            stops it
#   free_ports N          N free TCP ports on 127.0.0.1, one line
#
# Failures are explained through nginx_diag (to stderr; tap.sh makes it a
# TAP diagnostic).

# nginx_diag LINE...: why a helper failed.
nginx_diag() {
	printf '%s\n' "$@" >&2
}

# free_ports N: N TCP ports on 127.0.0.1 that were free a moment ago, on one
# line.  Whoever binds them may find one taken since, and should try again.
free_ports() {
	python3 -c 'import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])' "$1"
}

# make_ca DIR: a test CA (ca.key, ca.crt) and a server key and certificate
# (server.key, server.crt) for IP 127.0.0.1 and DNS localhost signed by it,
# made now.  Sets CA_FILE (the CA's certificate), TLS_CERT and TLS_KEY.
make_ca() {
	mkdir -p "$1" || return 1
	printf '%s\n' 'basicConstraints = critical, CA:FALSE' \
		'keyUsage = critical, digitalSignature, keyEncipherment' \
		'extendedKeyUsage = serverAuth' \
		'subjectAltName = IP:127.0.0.1, DNS:localhost' \
		'subjectKeyIdentifier = hash' \
		'authorityKeyIdentifier = keyid, issuer' >"$1/server.ext"
	if ! { openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$1/ca.key" -out "$1/ca.crt" -days 2 \
		-subj "/CN=modelcache test CA" \
		-addext "basicConstraints = critical, CA:TRUE" \
		-addext "keyUsage = critical, keyCertSign, cRLSign" &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
			-nodes -keyout "$1/server.key" -out "$1/server.csr" \
			-subj "/CN=localhost" &&
		openssl x509 -req -in "$1/server.csr" -CA "$1/ca.crt" \
			-CAkey "$1/ca.key" -set_serial "0x$(openssl rand -hex 8)" \
			-days 2 -extfile "$1/server.ext" -out "$1/server.crt"
	} >"$1/openssl.log" 2>&1; then
		nginx_diag "make_ca failed:" "$(cat "$1/openssl.log")"
		return 1
	fi
	CA_FILE="$1/ca.crt"
	TLS_CERT="$1/server.crt"
	TLS_KEY="$1/server.key"
}

# start_nginx DOCROOT: nginx serving DOCROOT read-only over HTTP and over
# HTTPS with HTTP/2 (make_ca's certificate, made if not yet) on ephemeral
# loopback ports.  Its own configuration, pid, lock, temporary and log files
# under $NGINX_WORK/nginx: the system's nginx is neither used nor touched.  Sets
# NGINX_HTTP, NGINX_HTTPS (https://localhost:PORT answers too) and
# NGINX_LOG, the access log, a line a request:
#   PROTOCOL METHOD URI STATUS BODY-BYTES "RANGE" "AUTHORIZATION"
# Waits until both ports answer, not for a time; on failure shows nginx's
# errors.  Stopped at exit.
start_nginx() {
	stop_nginx
	[ -n "${CA_FILE:-}" ] || make_ca "${NGINX_WORK:?}/ca" || return 1
	ngx_bin=$(command -v nginx || echo /usr/sbin/nginx)
	ngx_dir="${NGINX_WORK:?}/nginx"
	mkdir -p "$ngx_dir/tmp" || return 1
	NGINX_LOG="$ngx_dir/access.log"
	ngx_tries=0
	while :; do
		ngx_tries=$((ngx_tries + 1))
		# nginx cannot listen on port 0: take two free ports, and try
		# again if one was taken before nginx could bind it.
		ngx_ports=$(free_ports 2) || return 1
		# shellcheck disable=SC2086
		nginx_conf "$1" $ngx_ports >"$ngx_dir/nginx.conf"
		: >"$ngx_dir/error.log"
		if ! (nginx_run -t -q) >>"$ngx_dir/error.log" 2>&1; then
			nginx_diag "nginx -t failed:" "$(cat "$ngx_dir/error.log")"
			return 1
		fi
		nginx_run >>"$ngx_dir/error.log" 2>&1 &
		NGINX_PID=$!
		NGINX_HTTP="http://127.0.0.1:${ngx_ports% *}"
		NGINX_HTTPS="https://127.0.0.1:${ngx_ports#* }"
		ngx_i=0
		while [ $ngx_i -lt 1000 ]; do
			if ! kill -0 "$NGINX_PID" 2>/dev/null; then
				wait "$NGINX_PID"
				NGINX_PID=
				break
			fi
			[ "$(nginx_get "$NGINX_HTTP/.nginx-sync/up")" = 204 ] &&
				[ "$(nginx_get "$NGINX_HTTPS/.nginx-sync/up")" = 204 ] &&
				return 0
			ngx_i=$((ngx_i + 1))
			sleep 0.01
		done
		if [ -n "$NGINX_PID" ] || [ $ngx_tries -ge 5 ] ||
			! grep -q "Address already in use" "$ngx_dir/error.log"; then
			nginx_diag "nginx did not start:" "$(cat "$ngx_dir/error.log")"
			stop_nginx
			return 1
		fi
	done
}

# nginx_run ARGS...: exec nginx with start_nginx's files (in a subshell).
nginx_run() {
	exec </dev/null
	exec "$ngx_bin" "$@" -p "$ngx_dir/" -c "$ngx_dir/nginx.conf" \
	    -e "$ngx_dir/error.log"
}

# nginx_conf DOCROOT HTTP-PORT HTTPS-PORT: start_nginx's configuration.
nginx_conf() {
	# As root, workers would drop to nobody, who cannot read $NGINX_WORK.
	[ "$(id -u)" -ne 0 ] || echo "user root;"
	cat <<EOF
daemon off;
worker_processes 1;
pid "$ngx_dir/nginx.pid";
lock_file "$ngx_dir/nginx.lock";
error_log "$ngx_dir/error.log" notice;
events {
	worker_connections 256;
}
http {
	log_format mc '\$server_protocol \$request_method \$uri \$status '
	    '\$body_bytes_sent "\$http_range" "\$http_authorization"';
	access_log "$ngx_dir/access.log" mc;
	client_body_temp_path "$ngx_dir/tmp/body";
	proxy_temp_path "$ngx_dir/tmp/proxy";
	fastcgi_temp_path "$ngx_dir/tmp/fastcgi";
	uwsgi_temp_path "$ngx_dir/tmp/uwsgi";
	scgi_temp_path "$ngx_dir/tmp/scgi";
	types {
		application/json json;
		text/plain txt;
	}
	default_type application/octet-stream;
	sendfile on;
	server {
		listen 127.0.0.1:$2;
		listen 127.0.0.1:$3 ssl http2;
		server_name 127.0.0.1 localhost;
		ssl_certificate "$TLS_CERT";
		ssl_certificate_key "$TLS_KEY";
		root "$1";
		location / {
			limit_except GET {
				deny all;
			}
		}
		location ^~ /.nginx-sync/ {
			return 204;
		}
	}
}
EOF
}

# nginx_get URL: the status of a GET of URL (000 if nothing answered).
nginx_get() {
	curl -s --noproxy '*' --cacert "$CA_FILE" --max-time 10 -o /dev/null \
		-w '%{http_code}' "$1"
}

# nginx_sync: wait until the access log holds every request nginx answered
# so far.  nginx logs a request once its last byte went out, before its one
# worker takes the next event: a request made now, once logged, orders the
# log after every request answered before it.
nginx_sync() {
	# Counted in a file: the callers are often $(subshells).
	ngx_n=$(($(cat "$ngx_dir/syncs" 2>/dev/null || echo 0) + 1))
	echo "$ngx_n" >"$ngx_dir/syncs"
	[ "$(nginx_get "$NGINX_HTTP/.nginx-sync/$ngx_n")" = 204 ] || return 1
	ngx_i=0
	until grep -q "^[^ ]* GET /\\.nginx-sync/$ngx_n 204 " "$NGINX_LOG"; do
		ngx_i=$((ngx_i + 1))
		[ $ngx_i -lt 1000 ] || return 1
		sleep 0.01
	done
}

# nginx_bytes SUBSTRING: the body bytes nginx served for the URIs holding
# SUBSTRING.  printf, not print: mawk prints a sum over 2^31 as 2.14748e+09.
nginx_bytes() {
	nginx_sync || return 1
	awk -v s="$1" 'index($3, s) { n += $5 } END { printf "%.0f\n", n }' \
		"$NGINX_LOG"
}

stop_nginx() {
	if [ -n "${NGINX_PID:-}" ]; then
		kill "$NGINX_PID" 2>/dev/null
		wait "$NGINX_PID" 2>/dev/null
	fi
	NGINX_PID=
}
