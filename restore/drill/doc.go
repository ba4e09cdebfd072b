// Package drill implements walvault drill: a restore rehearsal that proves
// a repository can bring a cluster back, and says how long that took and
// how much recent work it would lose.
//
// Run restores a backup (with restore/pitr, exactly as walvault restore
// does) into a fresh scratch directory, starts PostgreSQL on it, waits for
// recovery to reach the target and promote, runs checks against the
// recovered cluster and then removes everything it made: the server is
// stopped, stray processes (walvault's WAL prefetchers) are killed, the
// scratch directory is deleted unless asked to keep it.
//
// The server it starts:
//   - listens on a free port of 127.0.0.1 only, and accepts connections
//     only on its Unix socket in the scratch directory (mode 0700), with a
//     pg_hba.conf of its own: the recovered copy holds production data;
//   - never archives: archive_mode is off on its command line, which no
//     configuration file can override, so a drill never writes its new
//     timeline into the repository it reads;
//   - runs as the account that owns the files (Options.OSUser) when the
//     drill runs as root, because PostgreSQL refuses to run as root;
//   - gets the hot standby settings of the primary from the restored
//     pg_control, so that recovery does not pause on a host configured
//     differently (a pause or an abort for that reason fails at once);
//   - is told to shut down (SIGQUIT) by the kernel if the drill dies
//     without cleaning up.
//
// Checks, each PASS, FAIL or SKIP with a reason: the restore itself, the
// server starts, recovery promotes (within Options.Timeout), pg_amcheck
// --all when installed, for every database that looks like Odoo (has
// ir_module_module) that res_users has rows and module base is installed,
// the count of attachments stored in the filestore (not checked: the
// filestore is not archived yet), and the custom SQL checks of a check
// file (ParseChecks).
//
// Measures: RTO is the time from the start of the restore to the promoted
// server answering its first query. RPO is the age of the newest recovered
// commit: for a time target, the target minus that commit's time; for the
// latest point, the drill's start minus it (see RPO).
//
// Reports render as text (WriteText), JSON (the Report type) and JUnit XML
// (WriteJUnit). A failed check is not an error of Run: Run returns an error
// wrapping ErrFailed, or, when the cause is known, the cause (a damaged
// object is repo.ErrIntegrity whether restore or recovery met it).
//
// The package logs through Options.Logger and never writes to stdout.
package drill
