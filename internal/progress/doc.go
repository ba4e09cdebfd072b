// Package progress shows how far a long operation (a backup, a restore, a
// drill, a filestore push) has come: a one-line bar on a terminal, plain
// log lines everywhere else.
//
// A command makes one Reporter for its run and passes it (or one of its
// methods) to the code doing the work:
//
//	p := progress.New(progress.Options{Out: os.Stderr, Terminal: true, Logger: log})
//	defer p.Close()
//	log = slog.New(p.Handler(log.Handler())) // log records clear the bar first
//	p.Start("push", totalBytes)              // a phase; total < 0 when unknown
//	p.SetItems(totalFiles, "files")          // optional second count
//	// from any number of goroutines:
//	p.Add(n)       // bytes done
//	p.AddItems(1)  // files done
//	p.Done()       // the phase's final figures; Start also ends the previous phase
//
// Code that already reports cumulative figures (archive/basebackup's and
// restore/pitr's Progress options) takes the method value p.Update.
//
// On a terminal the bar is redrawn at most four times a second: phase,
// done/total bytes, percent, rate, ETA. The rate is the average over the
// last few seconds, not since the start, so the ETA follows a change of
// speed. Anywhere else (a service, CI, JSON logs) the Logger receives one
// "progress" record every Interval (default 10 s) with the same figures as
// attributes, and an operation shorter than Interval logs none.
//
// The counters are atomic: Add, AddItems and Update take no lock and cost
// a few nanoseconds. Every method of a nil *Reporter does nothing, so
// progress can be turned off by passing nil.
package progress
