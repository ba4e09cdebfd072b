// Package deploy holds no code: it is the directory of files walvault ships
// for running as a service (systemd units, Prometheus alert rules, a
// Grafana dashboard, and README.md on installing them on a Debian host).
// Its test checks those files: that they parse, that every metric they use
// is one walvault exports, and, where systemd-analyze or promtool is
// installed, that those tools accept them.
package deploy
