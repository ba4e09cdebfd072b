package catalog

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/walvault/walvault/internal/pgwal"
	"github.com/walvault/walvault/internal/workpool"
	"github.com/walvault/walvault/repo"
	"github.com/walvault/walvault/storage"
)

// StopTimeProblem is a backup history file found for a backup but not used
// to date its end: damaged, undecryptable, or not matching the backup. The
// backup keeps the stop time its manifest records (never earlier than its
// true end, only later).
type StopTimeProblem struct {
	BackupID string
	Key      string
	Err      error
}

func (p StopTimeProblem) Error() string {
	return fmt.Sprintf("backup %s: backup history file %s not used (the backup's stop time stays as recorded, possibly late): %v", p.BackupID, p.Key, p.Err)
}

// maxStoredHistory bounds the stored size of a backup history object read
// here: its plaintext is at most pgwal.MaxBackupHistorySize, and sealing
// adds little.
const maxStoredHistory = pgwal.MaxBackupHistorySize + 4096

// CorrectStopTimes dates the end of every backup in bs whose manifest does
// not already take it from the server's backup history file (manifests of
// older walvault versions, whose stop time counts the whole start
// checkpoint, and backups taken on a host that could not read the
// repository) from that file, when wal lists it: one small Get per such
// backup. It changes the manifests in memory only; the stored ones stay
// as written. A file that is damaged, cannot be decrypted or does not
// match its backup is reported in problems and otherwise ignored; a
// storage or key error that says nothing about the file fails the call.
func CorrectStopTimes(ctx context.Context, r *repo.Repository, bs []*repo.BackupManifest, wal []repo.WALObject, segSize int64) (problems []StopTimeProblem, err error) {
	if !pgwal.ValidSegmentSize(segSize) {
		return nil, nil
	}
	listed := make(map[string]repo.WALObject)
	for _, w := range wal {
		if w.File.Kind == pgwal.KindBackupHistory {
			listed[w.Key] = w
		}
	}
	type job struct {
		m   *repo.BackupManifest
		obj repo.WALObject
	}
	var jobs []job
	for _, m := range bs {
		if m.StopTimeSource == repo.StopTimeFromHistory || m.Timeline == 0 {
			continue
		}
		if w, ok := listed[repo.BackupHistoryKey(m.Timeline, m.StartLSN, segSize)]; ok {
			jobs = append(jobs, job{m, w})
		}
	}
	var mu sync.Mutex
	err = workpool.Each(ctx, jobs, 4, func(j job) error {
		perr := useHistoryObject(ctx, r, j.m, j.obj)
		var p *historyProblem
		if errors.As(perr, &p) {
			mu.Lock()
			problems = append(problems, StopTimeProblem{BackupID: j.m.ID, Key: j.obj.Key, Err: p.err})
			mu.Unlock()
			return nil
		}
		return perr
	})
	if err != nil {
		return nil, err
	}
	return problems, nil
}

// historyProblem marks an error that concerns the history file itself.
type historyProblem struct{ err error }

func (p *historyProblem) Error() string { return p.err.Error() }

// useHistoryObject reads the history file obj and dates m's end from it.
func useHistoryObject(ctx context.Context, r *repo.Repository, m *repo.BackupManifest, obj repo.WALObject) error {
	if obj.Size > maxStoredHistory {
		return &historyProblem{fmt.Errorf("%d bytes stored, more than a backup history file can hold", obj.Size)}
	}
	data, _, err := r.Get(ctx, obj.Key)
	switch {
	case storage.IsNotExist(err):
		return nil // removed since the listing (an expire running now)
	case errors.Is(err, repo.ErrIntegrity), errors.Is(err, repo.ErrWrongKey):
		return &historyProblem{err}
	case err != nil:
		return fmt.Errorf("read backup history file %s: %w", obj.Key, err)
	}
	h, err := pgwal.ParseBackupHistory(data)
	if err == nil {
		err = m.UseBackupHistory(h)
	}
	if err != nil {
		return &historyProblem{err}
	}
	return nil
}
