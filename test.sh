#!/usr/bin/env bash
# The whole test suite, as a newcomer (and CI) runs it: `sudo ./test.sh`.
# Installs what the tests need on Debian 12, then runs every test of the workspace,
# including the real-world ones (network namespaces, a real sshd, nftables), which need root.
set -euo pipefail
cd "$(dirname "$0")"

if [ "$(id -u)" -ne 0 ]; then
  echo "test.sh: the real-world tests need root (network namespaces, nftables); run: sudo ./test.sh" >&2
  exit 1
fi

need=(nft ip sshd ssh sshpass useradd chpasswd runuser logger nginx apache2 curl monit man dpkg-shlibdeps unshare
  iptables-legacy-restore ipset tcpdmatch promtool chromium vsftpd python3 redis-server postfix dovecot
  dropbear m4)
missing=0
for c in "${need[@]}"; do command -v "$c" >/dev/null 2>&1 || [ -x "/usr/sbin/$c" ] || missing=1; done
# PostgreSQL's server is not on PATH (Debian keeps it under /usr/lib/postgresql/VERSION/bin).
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || missing=1
# the journald spoofing test runs the real journald in a private mount namespace
[ -x /lib/systemd/systemd-journald ] || missing=1
# the mail notification test runs a real SMTP server (aiosmtpd) with Debian's python3
[ -d /usr/lib/python3/dist-packages/aiosmtpd ] || missing=1
# the real FTP test runs Pure-FTPd under libfaketime and each server with its own rsyslogd
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] && [ -x /usr/sbin/rsyslogd ] || missing=1
# replay's daylight-saving test reads the Europe/Berlin zone
[ -e /usr/share/zoneinfo/Europe/Berlin ] || missing=1
# the real mail test runs Dovecot's IMAP and POP3 login services
[ -x /usr/lib/dovecot/imap-login ] && [ -x /usr/lib/dovecot/pop3-login ] || missing=1
# the real Synapse test's venv: Debian's python3 has ensurepip only with python3-venv
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || missing=1
# the real BIND test runs named and queries it with dig and nsupdate
[ -x /usr/sbin/named ] && [ -x /usr/bin/dig ] && [ -x /usr/bin/nsupdate ] || missing=1
# the real HAProxy and lighttpd tests
[ -x /usr/sbin/haproxy ] && [ -x /usr/sbin/lighttpd ] || missing=1
# the real OpenVPN test (its tunnel needs the kernel's tun driver: no package gives that, and
# the test fails loudly without /dev/net/tun)
[ -x /usr/sbin/openvpn ] && [ -x /usr/bin/openssl ] || missing=1
# the real slapd test (OpenLDAP server and clients)
[ -x /usr/sbin/slapd ] && [ -x /usr/sbin/slapadd ] && [ -x /usr/bin/ldapwhoami ] && [ -x /usr/bin/ldapsearch ] || missing=1
# the real Squid test (with its Basic auth helper)
[ -x /usr/sbin/squid ] && [ -x /usr/lib/squid/basic_ncsa_auth ] || missing=1
# the real Samba and tinyproxy tests
[ -x /usr/sbin/smbd ] && [ -x /usr/bin/pdbedit ] && [ -x /usr/bin/smbclient ] && [ -x /usr/bin/tinyproxy ] || missing=1
# the real Prosody (with Debian's mod_log_auth) and CUPS tests
[ -x /usr/bin/prosody ] && [ -x /usr/bin/prosodyctl ] && [ -f /usr/lib/prosody/modules/mod_log_auth/mod_log_auth.lua ] || missing=1
[ -x /usr/sbin/cupsd ] || missing=1
# the real PgBouncer and stunnel tests
[ -x /usr/sbin/pgbouncer ] && [ -x /usr/bin/stunnel4 ] || missing=1
# the real NSD and xinetd tests
[ -x /usr/sbin/nsd ] && [ -x /usr/sbin/xinetd ] || missing=1
# the real MIT Kerberos KDC and Dante tests
[ -x /usr/sbin/krb5kdc ] && [ -x /usr/sbin/kdb5_util ] && [ -x /usr/sbin/kadmin.local ] && [ -x /usr/bin/kinit ] && [ -x /usr/sbin/danted ] || missing=1
# the real Radicale and snmpd tests
[ -x /usr/bin/radicale ] && [ -x /usr/sbin/snmpd ] && [ -x /usr/bin/snmpget ] || missing=1
# the real InspIRCd and ocserv (with openconnect) tests
[ -x /usr/sbin/inspircd ] && [ -x /usr/sbin/ocserv ] && [ -x /usr/sbin/openconnect ] || missing=1
# the real ManageSieve and Cockpit tests
[ -x /usr/lib/dovecot/managesieve-login ] && [ -x /usr/lib/cockpit/cockpit-ws ] && [ -x /usr/lib/cockpit/cockpit-session ] && [ -x /usr/bin/cockpit-bridge ] || missing=1
# the real strongSwan test (charon, swanctl, the EAP plugins)
[ -x /usr/lib/ipsec/charon ] && [ -x /usr/sbin/swanctl ] && [ -f /usr/lib/ipsec/plugins/libstrongswan-eap-md5.so ] && [ -f /usr/lib/ipsec/plugins/libstrongswan-eap-mschapv2.so ] || missing=1
# the real NRPE test (Monit's is installed above for the injection test)
[ -x /usr/sbin/nrpe ] && [ -x /usr/lib/nagios/plugins/check_nrpe ] || missing=1
# the real Rspamd and Perdition tests
[ -x /usr/bin/rspamd ] && [ -x /usr/bin/rspamadm ] && [ -x /usr/sbin/perdition.imap4 ] || missing=1
# the real scanlogd and PortSentry tests (nmap scans them)
[ -x /usr/sbin/scanlogd ] && [ -x /usr/sbin/portsentry ] && [ -x /usr/bin/nmap ] || missing=1
# the real Tomcat test (the Manager and Host Manager apps)
[ -x /usr/share/tomcat10/bin/catalina.sh ] && [ -f /usr/share/tomcat10/etc/server.xml ] && [ -f /etc/tomcat10/Catalina/localhost/manager.xml ] && [ -f /usr/share/tomcat10-admin/manager/WEB-INF/web.xml ] && [ -x /usr/bin/java ] || missing=1
# the real 389 Directory Server test (dscreate makes its instance)
[ -x /usr/sbin/ns-slapd ] && [ -x /usr/sbin/dscreate ] && [ -x /usr/bin/ldapadd ] || missing=1
# the real Kamailio test
[ -x /usr/sbin/kamailio ] || missing=1
# the real xrdp test (xfreerdp draws on a private Xtigervnc display)
[ -x /usr/sbin/xrdp ] && [ -x /usr/sbin/xrdp-sesman ] && [ -x /usr/bin/xfreerdp ] && [ -x /usr/bin/Xtigervnc ] || missing=1
# the real Caddy test
[ -x /usr/bin/caddy ] || missing=1
# the real OpenSMTPD test (it builds a small shim with cc: see the test)
[ -x /usr/bin/cc ] || missing=1
# the real Apache modules test (ModSecurity 2.9 without the CRS)
[ -f /usr/lib/apache2/modules/mod_security2.so ] || missing=1
# the real TigerVNC test (VNC and Plain logins; python3-cryptography for the VNC DES answer)
[ -x /usr/bin/Xtigervnc ] && [ -f /etc/pam.d/tigervnc ] && [ -d /usr/lib/python3/dist-packages/cryptography ] || missing=1
# the real Libreswan test (certutil makes pluto's NSS database)
[ -x /usr/bin/certutil ] || missing=1
# the real Syncthing test
[ -x /usr/bin/syncthing ] || missing=1
# the real Sendmail AUTH test (Cyrus SASL's PLAIN, LOGIN and sasldb modules)
[ -f /usr/lib/x86_64-linux-gnu/sasl2/libplain.so.2 ] && [ -f /usr/lib/x86_64-linux-gnu/sasl2/liblogin.so.2 ] && [ -f /usr/lib/x86_64-linux-gnu/sasl2/libsasldb.so.2 ] || missing=1
# the real LemonLDAP::NG test (the portal, its FastCGI server, and the Perl modules its LDAP backend and captcha plugin load)
[ -x /usr/sbin/llng-fastcgi-server ] && perl -MLemonldap::NG::Portal::Main -MNet::LDAP -MIO::Socket::Timeout -MUnicode::String -MGD::SecurityImage -MImage::Magick -e1 2>/dev/null || missing=1
# the real prefix test (BusyBox's syslogd applet)
[ -x /usr/bin/busybox ] || missing=1
# debootstrap makes the Debian 13 tree of the newest-release tests (below)
[ -x /usr/sbin/debootstrap ] || missing=1
# ufw and psad for real_ufw / real_psad (kernel LOG lines of a namespace)
[ -x /usr/sbin/ufw ] && [ -x /usr/sbin/psad ] || missing=1
# WordPress, PHP for Apache, MariaDB and ZoneMinder for the real PHP web-application tests
[ -d /usr/share/wordpress ] && [ -e /usr/lib/apache2/modules/libphp8.2.so ] && [ -x /usr/sbin/mariadbd ] && [ -d /usr/share/zoneminder ] || missing=1
# XML for WordPress' XML-RPC and its default theme (the real WordPress test: without them XML-RPC answers a parse error and the front page 500)
[ -f /etc/php/8.2/mods-available/xml.ini ] && [ -f /usr/share/wordpress/wp-content/themes/twentytwentythree/theme.json ] || missing=1
# dbus: the real Cockpit journal test boots systemd in a container, and Cockpit's HTTPS path needs the system bus
[ -x /usr/bin/dbus-daemon ] || missing=1
# logrotate: the restart tests rotate a followed log with the real logrotate while the daemon is down
[ -x /usr/sbin/logrotate ] || missing=1
# acl: setfacl, for the test that a configuration file a named user may write is refused
[ -x /usr/bin/setfacl ] || missing=1
if [ "$missing" -eq 1 ] || [ "${PORTCULLIS_APT:-}" = "always" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  # policy-rc.d: installing openssh-server must not start a real sshd on this machine
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && created_policy=1
  fi
  # nginx, apache2, postgresql and monit: the log-injection regression tests attack the real
  # programs; systemd: its journald, for the journal spoofing test; iptables, ipset, tcpd: the
  # firewall backends' tests (vsftpd: a real libwrap daemon; python3: a web server
  # behind a DOCKER-USER hook); prometheus: promtool checks the metrics a test scrapes
  # (policy-rc.d keeps its server from starting); chromium: the report test opens its HTML
  # page in it; redis-server: the fleet tests run a real Redis; postfix, dovecot-imapd and
  # dovecot-pop3d: the real mail test (policy-rc.d keeps their services from starting);
  # libfaketime, rsyslog: the real FTP test (vsftpd's service kept from starting likewise).
  # dropbear-bin: the real Dropbear test (no service: the package has none).
  # m4: the real Sendmail test builds its sendmail.cf from the unpacked sendmail-cf.
  # python3-venv: the real Synapse test's venv (Debian's python3 has no ensurepip without it).
  # bind9, bind9-dnsutils: the real BIND test (policy-rc.d keeps named's service from starting).
  # haproxy, lighttpd, openvpn (and openssl, for its certificates), slapd and ldap-utils,
  # squid, samba and smbclient, tinyproxy-bin (the binary without a service), prosody
  # and prosody-modules, cups-daemon, pgbouncer, stunnel4, nsd, xinetd, krb5-kdc,
  # krb5-admin-server, krb5-user, dante-server, radicale, snmpd, snmp, inspircd, ocserv,
  # openconnect, strongswan-charon, strongswan-swanctl, libcharon-extra-plugins, scanlogd,
  # portsentry, nmap: their real tests (policy-rc.d keeps their services from starting; slapd's package
  # makes its own default database, which the test does not use).
  # postfix: no configuration of the machine's own mail system (its test runs its own)
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get install -y -q nftables iproute2 openssh-server openssh-client sshpass passwd \
    util-linux bsdutils nginx apache2 curl postgresql monit systemd man-db dpkg-dev iptables ipset tcpd \
    python3-aiosmtpd prometheus chromium vsftpd python3 redis-server \
    postfix dovecot-imapd dovecot-pop3d libfaketime rsyslog dropbear-bin m4 python3-venv \
    bind9 bind9-dnsutils haproxy lighttpd openvpn openssl slapd ldap-utils squid \
    samba smbclient tinyproxy-bin prosody prosody-modules cups-daemon pgbouncer stunnel4 \
    nsd xinetd krb5-kdc krb5-admin-server krb5-user dante-server radicale snmpd snmp \
    inspircd ocserv openconnect strongswan-charon strongswan-swanctl libcharon-extra-plugins \
    scanlogd portsentry nmap tzdata logrotate acl
  # dovecot-managesieved, cockpit-ws, cockpit-bridge, cockpit-system, nagios-nrpe-server,
  # nagios-nrpe-plugin, rspamd, perdition: their real tests
  # tomcat10 tomcat10-admin: the real Tomcat test
  # 389-ds-base: the real 389 Directory Server test
  # kamailio: the real Kamailio test
  # xrdp freerdp2-x11 tigervnc-standalone-server: the real xrdp test
  # caddy: the real Caddy test
  # gcc: the real OpenSMTPD test
  # libapache2-mod-security2: the real Apache modules test
  # python3-cryptography: the real TigerVNC test
  # libnss3-tools: the real Libreswan test
  # syncthing: the real Syncthing test
  # libsasl2-modules libsasl2-modules-db: the real Sendmail AUTH test
  # liblemonldap-ng-portal-perl lemonldap-ng-fastcgi-server libnet-ldap-perl libio-socket-timeout-perl libunicode-string-perl libgd-securityimage-perl libimage-magick-perl: the real LemonLDAP::NG test
  # busybox: the real prefix test
  # debootstrap debian-archive-keyring: the Debian 13 trees of the newest-release tests (the
  # keyring's newest version holds the key trixie's archive is signed with)
  # ufw psad: ufw and psad for real_ufw / real_psad
  # wordpress libapache2-mod-php mariadb-server zoneminder: WordPress, PHP for Apache, MariaDB and ZoneMinder for the real PHP web-application tests
  # php8.2-xml wordpress-theme-twentytwentythree: XML for WordPress' XML-RPC and its default theme
  # dbus: the system bus for the real Cockpit journal test's systemd container
  # (without recommends: the tests need none of what they would bring)
  apt-get install -y -q --no-install-recommends dovecot-managesieved cockpit-ws cockpit-bridge cockpit-system \
    nagios-nrpe-server nagios-nrpe-plugin rspamd perdition \
    tomcat10 tomcat10-admin 389-ds-base kamailio xrdp freerdp2-x11 tigervnc-standalone-server caddy gcc libapache2-mod-security2 python3-cryptography libnss3-tools syncthing libsasl2-modules libsasl2-modules-db liblemonldap-ng-portal-perl lemonldap-ng-fastcgi-server libnet-ldap-perl libio-socket-timeout-perl libunicode-string-perl libgd-securityimage-perl libimage-magick-perl busybox debootstrap debian-archive-keyring ufw psad wordpress libapache2-mod-php mariadb-server zoneminder php8.2-xml wordpress-theme-twentytwentythree dbus
  [ "$created_policy" -eq 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# Programs that conflict with what is installed above run from their .debs, unpacked
# (dpkg -x) into /var/cache/portcullis-test/NAME/root and never installed, with every library
# they need that the machine lacks, the whole closure (proftpd-core needs libmemcached11,
# which needs libhashkit2):
#   Exim (exim4-daemon-light conflicts with postfix: both provide mail-transport-agent; the
#   heavy daemon too, for the spam-scanning test: the light one has no content scanning),
#   Sendmail (sendmail-bin likewise; its binary is usr/libexec/sendmail/sendmail, the
#   usr/sbin/sendmail-mta link is made by its postinst),
#   ProFTPD and Pure-FTPd (each Conflicts: ftp-server, as vsftpd does),
#   Courier-IMAP (courier-imap and dovecot-imapd both provide imap-server; its libcourierauth
#   is in usr/lib, not the multiarch directory), and the Courier MTA (courier-mta conflicts
#   with postfix),
#   Cyrus IMAP (cyrus-imapd conflicts with dovecot-imapd; with sasl2-bin for saslpasswd2,
#   whose saslauthd service would start if it were installed),
#   OpenSMTPD (opensmtpd conflicts with postfix),
#   Libreswan (libreswan conflicts with strongswan-charon),
#   Solid POP3 (solid-pop3d conflicts with dovecot-pop3d),
#   syslog-ng and inetutils' syslogd (each conflicts with rsyslog: both provide
#   system-log-daemon).
# Endlessh too, though it conflicts with nothing: installed, its service would start a tarpit.
# Done again only when Debian's version changes.
unpack() { # NAME BINARY PACKAGE...
  local name=$1 bin=$2 dir=/var/cache/portcullis-test/$1 v libs libdirs round
  shift 2
  v=$(apt-cache show --no-all-versions "$@" 2>/dev/null | sed -n 's/^Version: //p' | paste -sd' ')
  [ -n "$v" ] || { apt-get update -q && v=$(apt-cache show --no-all-versions "$@" | sed -n 's/^Version: //p' | paste -sd' '); }
  if [ -x "$dir/root/$bin" ] && [ "$(cat "$dir/version" 2>/dev/null)" = "$v" ]; then return 0; fi
  rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
  # apt downloads as _apt where it can write
  chown _apt "$dir/debs" 2>/dev/null || true
  (cd "$dir/debs" && apt-get download -q "$@")
  # the lib* dependencies of what is here that are neither installed nor here yet (first
  # alternative, version dropped), until there are none (bounded: a chain is a few long)
  for round in 1 2 3 4 5 6 7 8; do
    libs=$(for deb in "$dir"/debs/*.deb; do dpkg-deb -f "$deb" Depends; done | tr ',' '\n' |
      sed -e 's/|.*//' -e 's/(.*//' -e 's/:any$//' -e 's/ //g' | grep '^lib' | sort -u |
      while read -r p; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' && continue
        compgen -G "$dir/debs/${p}_*.deb" >/dev/null && continue
        echo "$p"
      done)
    [ -n "$libs" ] || break
    (cd "$dir/debs" && apt-get download -q $libs)
  done
  for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
  # every directory of the unpacked tree that holds a shared object (syslog-ng keeps its own
  # in usr/lib/syslog-ng, its RUNPATH)
  libdirs=$(find "$dir/root" -name '*.so*' -printf '%h\n' | sort -u | paste -sd:)
  if LD_LIBRARY_PATH="$libdirs" ldd "$dir/root/$bin" | grep 'not found'; then
    echo "test.sh: the unpacked $bin (round $round) misses the libraries above" >&2
    exit 1
  fi
  echo "$v" > "$dir/version"
}
unpack exim usr/sbin/exim4 exim4-daemon-light exim4-base
unpack exim-heavy usr/sbin/exim4 exim4-daemon-heavy exim4-base
# SA-Exim (a local_scan() module Exim heavy loads) and spamc, which it runs: tests/real_sa_exim.rs
unpack sa-exim usr/bin/spamc sa-exim spamc
unpack sendmail usr/libexec/sendmail/sendmail sendmail-bin sendmail-base sendmail-cf
unpack proftpd usr/sbin/proftpd proftpd-core
unpack pure-ftpd usr/sbin/pure-ftpd pure-ftpd
unpack endlessh usr/bin/endlessh endlessh
unpack courier usr/bin/imapd courier-imap courier-base courier-authdaemon courier-authlib courier-authlib-userdb
unpack cyrus usr/lib/cyrus/bin/master cyrus-common cyrus-imapd cyrus-pop3d sasl2-bin
unpack courier-mta usr/lib/courier/courier/modules/esmtp/courieresmtpd courier-mta courier-base courier-authdaemon courier-authlib courier-authlib-userdb
unpack opensmtpd usr/sbin/smtpd opensmtpd
unpack libreswan usr/libexec/ipsec/pluto libreswan
unpack solid-pop3d usr/sbin/solid-pop3d solid-pop3d
unpack syslog-ng usr/sbin/syslog-ng syslog-ng-core
unpack inetutils-syslogd usr/sbin/syslogd inetutils-syslogd

# Matrix Synapse (tests/real_synapse.rs) comes from PyPI, pinned: Debian 12 has no
# matrix-synapse in main (only Matrix.org's own apt repository, which this machine does not
# reach). Installed with pip into a venv of Debian's python3 (python3-venv) under
# /var/cache/portcullis-test/synapse (PORTCULLIS_SYNAPSE_VENV elsewhere), never on the system;
# binary wheels only (its Rust extension is one: nothing is compiled). Its dependencies are pinned
# too (tests/synapse-constraints.txt). Done again only when the version or the pins change.
synapse_version=1.163.2
synapse_constraints="$PWD/crates/portcullis/tests/synapse-constraints.txt"
synapse_stamp="$synapse_version $(sha256sum < "$synapse_constraints" | cut -c1-16)"
synapse_dir=/var/cache/portcullis-test/synapse
if [ ! -x "$synapse_dir/venv/bin/python" ] || [ "$(cat "$synapse_dir/version" 2>/dev/null)" != "$synapse_stamp" ]; then
  rm -rf "$synapse_dir" && mkdir -p "$synapse_dir"
  /usr/bin/python3 -m venv "$synapse_dir/venv"
  "$synapse_dir/venv/bin/pip" install -q --no-cache-dir --only-binary=:all: --disable-pip-version-check \
    -c "$synapse_constraints" "matrix-synapse==$synapse_version" || {
    echo "test.sh: pip could not install matrix-synapse==$synapse_version into $synapse_dir/venv" >&2
    exit 1
  }
  "$synapse_dir/venv/bin/python" -c 'import synapse.app.homeserver, synapse.logging' || {
    echo "test.sh: the installed matrix-synapse does not import" >&2
    exit 1
  }
  echo "$synapse_stamp" > "$synapse_dir/version"
fi

# Cowrie (tests/real_cowrie.rs) comes from PyPI the same way: Debian 12 has no cowrie.
# Pinned with its dependencies (tests/cowrie-constraints.txt), binary wheels only.
cowrie_version=3.1.4
cowrie_constraints="$PWD/crates/portcullis/tests/cowrie-constraints.txt"
cowrie_stamp="$cowrie_version $(sha256sum < "$cowrie_constraints" | cut -c1-16)"
cowrie_dir=/var/cache/portcullis-test/cowrie
if [ ! -x "$cowrie_dir/venv/bin/twistd" ] || [ "$(cat "$cowrie_dir/version" 2>/dev/null)" != "$cowrie_stamp" ]; then
  rm -rf "$cowrie_dir" && mkdir -p "$cowrie_dir"
  /usr/bin/python3 -m venv "$cowrie_dir/venv"
  "$cowrie_dir/venv/bin/pip" install -q --no-cache-dir --only-binary=:all: --disable-pip-version-check \
    -c "$cowrie_constraints" "cowrie==$cowrie_version" || {
    echo "test.sh: pip could not install cowrie==$cowrie_version into $cowrie_dir/venv" >&2
    exit 1
  }
  "$cowrie_dir/venv/bin/python" -c 'import cowrie.ssh.factory, cowrie.telnet.factory, twisted.conch.ssh.transport' || {
    echo "test.sh: the installed cowrie does not import" >&2
    exit 1
  }
  echo "$cowrie_stamp" > "$cowrie_dir/version"
fi

# Haraka (tests/real_haraka.rs) comes from npm, pinned: Debian 12 has no Haraka. Haraka 3.3
# needs Node.js 20 or later: this machine's (NodeSource's 20; Debian 12's own nodejs is 18,
# too old). Installed under /var/cache/portcullis-test/haraka (PORTCULLIS_HARAKA_DIR
# elsewhere), never on the system, without install scripts; done again only when the
# version changes.
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ] || ! command -v npm >/dev/null 2>&1; then
  echo "test.sh: the real Haraka test needs Node.js 20 or later with npm (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi
haraka_version=3.3.4
haraka_dir=/var/cache/portcullis-test/haraka
if [ ! -x "$haraka_dir/node_modules/.bin/haraka" ] || [ "$(cat "$haraka_dir/version" 2>/dev/null)" != "$haraka_version" ]; then
  rm -rf "$haraka_dir" && mkdir -p "$haraka_dir"
  npm install --prefix "$haraka_dir" --no-audit --no-fund --ignore-scripts "Haraka@$haraka_version" || {
    echo "test.sh: npm could not install Haraka@$haraka_version" >&2
    exit 1
  }
  "$haraka_dir/node_modules/.bin/haraka" -v >/dev/null || { echo "test.sh: the installed Haraka does not run" >&2; exit 1; }
  echo "$haraka_version" > "$haraka_dir/version"
fi

# Debian 13 (trixie), for the real tests of the newest releases Debian ships (OpenSSH 10.0
# with sshd-session and sshd-auth, Dovecot 2.4, Postfix 3.10, Dropbear 2025, Prosody 13,
# xrdp 0.10, Kamailio 6.0, InspIRCd 4, Libreswan 5, OpenSMTPD 7.6, 389-ds 3.1, OpenLDAP 2.6,
# BIND 9.20, Squid 6, HAProxy 3.0, Samba 4.22, Cockpit 337, TigerVNC 1.15, Syncthing 1.29,
# PgBouncer 1.24, tinyproxy 1.11.2, OpenVPN 2.6.14, ocserv 1.3, MIT Kerberos 1.21, lighttpd
# 1.4.79, NSD 4.12, stunnel 5.74, CUPS 2.4.10, vsftpd 3.0.5, nginx 1.26, Apache
# with ModSecurity 2.9.11, rsyslog 8.2504, BusyBox 1.37; about 1.5 GB): a minimal trixie tree made
# by debootstrap from Debian's own mirror under /var/cache/portcullis-test/trixie
# (PORTCULLIS_TRIXIE_ROOT elsewhere), never installed on this system; the tests run its
# programs chrooted inside their own namespaces (tests/common/real.rs). No service of the tree
# is started here (debootstrap, and policy-rc.d for the packages apt adds after it, keep them
# from starting). debootstrap takes the first list (its resolver does not follow Prosody's
# alternatives), apt-get in the tree the second; the third conflicts with the tree's programs
# (OpenSMTPD and Postfix are both mail-transport-agents, Pure-FTPd and vsftpd ftp-servers):
# it is unpacked (dpkg -x) under /opt/unpacked/NAME of the tree, its libraries being in the
# second list. Made again only when the lists change;
# `PORTCULLIS_TRIXIE=refresh` makes them again (new point releases).
# trixie_tree DIR BASE MORE UNPACK: makes DIR unless DIR.pkgs already names these lists.
trixie_tree() {
  local dir=$1 base=$2 more=$3 unpack=$4 stamp log p
  stamp="$base $more / $unpack"
  # One maker per tree: a test.sh stopped while its trees were being made leaves the makers
  # running (their processes hold the lock); the next one waits for them.
  mkdir -p /var/cache/portcullis-test
  exec 9>"$dir.lock"
  flock 9
  if [ -x "$dir/usr/bin/apt-get" ] && [ "$(cat "$dir.pkgs" 2>/dev/null)" = "$stamp" ] &&
    [ "${PORTCULLIS_TRIXIE:-}" != "refresh" ]; then
    return 0
  fi
  rm -rf "$dir.new" "$dir" "$dir.pkgs"
  log=$dir-debootstrap.log
  debootstrap --variant=minbase --include="$base" trixie "$dir.new" http://deb.debian.org/debian > "$log" 2>&1 || {
    echo "test.sh: debootstrap of Debian 13 into $dir.new failed (see $log)" >&2
    exit 1
  }
  cp /etc/resolv.conf "$dir.new/etc/resolv.conf"
  printf '#!/bin/sh\nexit 101\n' > "$dir.new/usr/sbin/policy-rc.d"
  chmod +x "$dir.new/usr/sbin/policy-rc.d"
  (
    chroot "$dir.new" apt-get update -q || exit 1
    # shellcheck disable=SC2086 # a list of package names
    chroot "$dir.new" env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -q --no-install-recommends $more || exit 1
    for p in $unpack; do
      chroot "$dir.new" sh -c "cd /tmp && apt-get download -q $p && mkdir -p /opt/unpacked/$p &&
        dpkg -x /tmp/${p}_*.deb /opt/unpacked/$p && rm /tmp/${p}_*.deb" || exit 1
    done
  ) >> "$log" 2>&1 || {
    echo "test.sh: apt-get in the Debian 13 tree $dir.new failed (see $log)" >&2
    exit 1
  }
  rm -f "$dir.new/usr/sbin/policy-rc.d"
  mv "$dir.new" "$dir"
  echo "$stamp" > "$dir.pkgs"
}
# (rsync stays in the first tree's list, from the real test of the rsyncd filter, withdrawn
# 2026-12-05: taking it out would make every machine build that tree again.)
# The trees are made side by side, in the background, while cargo builds the tests below;
# test.sh waits for them before it runs the tests.
tree_jobs=()
trixie_tree /var/cache/portcullis-test/trixie \
  openssh-server,openssh-client,dovecot-imapd,dovecot-pop3d,postfix,libsasl2-modules \
  "dropbear-bin prosody prosody-modules xrdp kamailio inspircd libreswan libevent-2.1-7t64 libdb5.3t64
  389-ds-base slapd bind9 squid haproxy samba cockpit-ws cockpit-bridge tigervnc-standalone-server syncthing
  pgbouncer dovecot-managesieved tinyproxy-bin openvpn ocserv krb5-kdc lighttpd nsd stunnel4 cups-daemon rsync
  vsftpd nginx apache2 libapache2-mod-security2 libsodium23 rsyslog busybox dbus" \
  "opensmtpd pure-ftpd" &
tree_jobs+=($!)
# The second tree, /var/cache/portcullis-test/trixie-b (PORTCULLIS_TRIXIE_B_ROOT elsewhere),
# holds what conflicts with the first one's programs: Exim 4.98 (Postfix), Cyrus IMAP 3.10
# (Dovecot), strongSwan 6.0 (Libreswan), ProFTPD 1.3.8 (vsftpd), syslog-ng 4.8 (rsyslog).
trixie_tree /var/cache/portcullis-test/trixie-b \
  openssh-client,libsasl2-modules \
  "exim4-daemon-light cyrus-imapd cyrus-pop3d sasl2-bin strongswan-charon strongswan-swanctl
  libcharon-extra-plugins libcharon-extauth-plugins proftpd-core syslog-ng-core" "" &
tree_jobs+=($!)

# The third tree, /var/cache/portcullis-test/trixie-c (PORTCULLIS_TRIXIE_C_ROOT elsewhere):
# the Courier MTA 1.4 and Courier-IMAP 5.2 (they conflict with Postfix and Dovecot in the
# first tree), and the smaller services whose Debian 13 releases changed: Rspamd 3.12, Monit
# 5.34, Radicale 3.5, Net-SNMP 5.9.4, NRPE 4.1.3, Perdition, xinetd 2.3.15.4, tcpd,
# PortSentry and LemonLDAP::NG 2.21 (its last four Perl modules are only Recommends in Debian
# 13, but 2.21's LDAP password module needs them: without them the portal answers 500).
trixie_tree /var/cache/portcullis-test/trixie-c \
  openssh-client,libsasl2-modules \
  "courier-mta courier-imap courier-authdaemon courier-authlib-userdb rspamd monit radicale snmpd
  nagios-nrpe-server perdition xinetd tcpd portsentry liblemonldap-ng-portal-perl
  lemonldap-ng-fastcgi-server libnet-ldap-perl libio-socket-timeout-perl libunicode-string-perl
  libgd-securityimage-perl libimage-magick-perl libmime-tools-perl libemail-address-xs-perl
  libemail-sender-perl libstring-random-perl" "" &
tree_jobs+=($!)
# The fourth tree, /var/cache/portcullis-test/trixie-d (PORTCULLIS_TRIXIE_D_ROOT elsewhere):
# Sendmail 8.18 with SMTP AUTH (it conflicts with every other tree's MTA). Its packages are
# unpacked under /opt/unpacked, not installed: sendmail-bin's postinst needs /proc; their
# libraries and tools are installed.
trixie_tree /var/cache/portcullis-test/trixie-d \
  openssh-client,libsasl2-modules \
  "m4 make sasl2-bin libdb5.3t64 libldap2 liblockfile1 libnsl2 libssl3t64 libwrap0 lockfile-progs
  procps perl adduser" \
  "sendmail-bin sendmail-base sendmail-cf" &
tree_jobs+=($!)

# The fifth tree, /var/cache/portcullis-test/trixie-e (PORTCULLIS_TRIXIE_E_ROOT elsewhere):
# the web applications and databases, WordPress 6.8 (with a theme: its package has none) on
# PHP 8.4 under Apache with MariaDB 11.8, PostgreSQL 17, and Exim 4.98's heavy daemon with
# SpamAssassin and SA-Exim (it conflicts with trixie-b's light one); Miniflux 2.2 (on that
# PostgreSQL) and ntfy 2.11, two self-hosted services Debian 12 does not have.
trixie_tree /var/cache/portcullis-test/trixie-e \
  openssh-client \
  "apache2 libapache2-mod-php php-mysql php-xml wordpress wordpress-theme-twentytwentyfive
  mariadb-server postgresql exim4-daemon-heavy spamassassin sa-exim miniflux ntfy" "" &
tree_jobs+=($!)

# cargo-deb: the Debian package test builds the package as the README says (`cargo deb`)
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked --version 3.8.0

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
# the test binaries, built while the Debian 13 trees are being made; then the trees
cargo test --workspace --locked --no-run
for job in "${tree_jobs[@]}"; do
  wait "$job" || {
    echo "test.sh: a Debian 13 tree could not be made (see /var/cache/portcullis-test/*-debootstrap.log)" >&2
    exit 1
  }
done
# The tests: what `cargo test --workspace --locked -- --include-ignored` runs, with the test
# binaries run TEST_JOBS (default 3) at a time instead of one after another (most of the
# real-server tests' time is waiting on the servers they start; tools/run-tests.py says
# which binaries must not overlap, and prints each binary's output whole and its wall time).
# --include-ignored: the tests that need root are marked ignored, so that `cargo test` as a
# normal user lists them as skipped; here (root) every one of them runs.
# (fleet_bench is a benchmark, not a test: it feeds 10,000 bans/s and is run by hand on a
# release build, bench/README.md "Fleet benchmark"; every other ignored test runs here)
python3 tools/run-tests.py --jobs "${TEST_JOBS:-3}" --cargo=--workspace --cargo=--locked -- \
  --include-ignored --skip fleet_bench --test-threads="${TEST_THREADS:-2}"
cargo test --workspace --locked --doc
