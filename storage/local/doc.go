// Package local implements storage.Store on a directory of the local file
// system, for repositories on local disks, NFS mounts or removable media.
//
// Object keys map one-to-one onto paths below the root directory, so a
// repository can be read, copied or synced to S3 with ordinary tools:
// the key "wal/00000001/000000010000000000000003" is the file
// ROOT/wal/00000001/000000010000000000000003.
//
// What it promises, beyond the storage.Store contract:
//   - Put writes a temporary file in ROOT/.tmp, fsyncs it, moves it into
//     place (rename(2), or link(2) for IfAbsent so that the existence check
//     and the write are one atomic step), and fsyncs every directory whose
//     entries changed. When Put returns nil the object survives a power
//     loss; a failed or cancelled Put leaves only a file in ROOT/.tmp, which
//     it removes, and which List never returns.
//   - Files are created with mode 0600 and directories with mode 0700,
//     whatever the umask: the repository is its owner's alone. A
//     directory too is prepared in ROOT/.tmp, given its mode, and renamed
//     into place, so none of another mode is ever left where objects go.
//   - Unless the root directory is set-group-ID and group-writable (as
//     made by `install -d -m 2770 -o USER -g GROUP ROOT`): then the store
//     is shared by the members of that group. Directories are created
//     2770 (set-group-ID: everything below takes the root's group, not
//     its creator's) and files 0640, so every member can read every
//     object and create, replace or delete any (a Delete needs write
//     access to the directory only), and temporaries another member's
//     process left behind are removed as the user's own are (one that
//     died before it gave its temporary to the group leaves one the
//     others cannot lock: it is removed by its age alone). Only members
//     (and root) may write: a user outside the group cannot make a
//     directory set-group-ID, and a Put that would need one fails saying
//     so. The
//     mode is read when the store is opened (Shared reports it).
//
// Limits that follow from using a file system:
//   - The first key segment ".tmp" is reserved; such keys are rejected.
//   - A key cannot also be a directory of other keys: with an object at
//     "a/b", a Put of "a/b/c" fails (and the other way round). The error is
//     neither ErrExist nor ErrNotExist.
//   - A Put holds its temporary locked (flock(2)) until it is in place.
//     The first Put of a Store removes the temporaries no process holds
//     locked, left by a process that died in the middle of a Put (crash,
//     kill -9), and the empty directories a dead Put prepared: they never
//     stay for longer than the next write. On a file system without locks
//     the files stay until removed by hand.
//   - Delete does not remove directories left empty. Neither they nor
//     temporaries are ever visible through the Store.
package local
