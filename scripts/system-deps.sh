#!/bin/sh
# Installs (as root on Debian/Ubuntu) or names the system packages this project needs:
# Prometheus + promtool and Alertmanager (the embedded server), VictoriaMetrics (the
# second-engine test), HAProxy 2.6 (the haproxy SLI preset's real-exporter test), Node.js and npm
# (the opossum breaker test's service), Chromium (the report's Prometheus screenshots, the
# JupyterLab browser test), Pango and
# fonts (WeasyPrint's PDF), python3-venv (.venv).
set -eu
# "report": only what the gate and its report need (make report, lab, docs); default: all (make test).
only="${1:-all}"
missing=""
command -v prometheus >/dev/null 2>&1 || missing="$missing prometheus"
command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || missing="$missing prometheus-alertmanager"
if [ "$only" != report ]; then  # the tests' second engine, real exporters and tools
    command -v victoria-metrics >/dev/null 2>&1 || missing="$missing victoria-metrics"
    command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$missing haproxy"
    command -v node >/dev/null 2>&1 || missing="$missing nodejs"
    command -v npm >/dev/null 2>&1 || missing="$missing npm"
    command -v pdftotext >/dev/null 2>&1 || missing="$missing poppler-utils"
    command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
fi
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
ldconfig -p 2>/dev/null | grep -q 'libpangoft2-1.0.so.0' || missing="$missing libpango-1.0-0 libpangoft2-1.0-0"
ldconfig -p 2>/dev/null | grep -q 'libharfbuzz-subset.so.0' || missing="$missing libharfbuzz-subset0"
fc-list 2>/dev/null | grep -qi 'dejavu' || missing="$missing fonts-dejavu-core fontconfig"
python3 -m venv --help >/dev/null 2>&1 && python3 -c 'import ensurepip' >/dev/null 2>&1 || missing="$missing python3-venv"
[ -z "$missing" ] && exit 0
pkgs=$(echo $missing | tr ' ' '\n' | sort -u | tr '\n' ' ')
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Installing system packages: $pkgs"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
    exit 0
fi
echo "Missing system packages:$missing" >&2
echo "Install them with one of:" >&2
echo "  sudo apt-get install --no-install-recommends $pkgs" >&2
echo "  conda env create -f environment.yml   (conda-forge prometheus, alertmanager, pango)" >&2
echo "  brew install prometheus alertmanager victoriametrics pango" >&2
exit 1
