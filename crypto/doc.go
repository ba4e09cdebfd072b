// Package crypto turns age keys in their usual text forms into the
// age.Recipient and age.Identity values that encrypt and decrypt walvault's
// repository objects, and creates new keys.
//
// Recipients (public keys, all an archiving host needs) may be native X25519
// "age1…" keys, post-quantum hybrid "age1pq1…" keys, or SSH "ssh-ed25519" /
// "ssh-rsa" public keys. Identities (secret keys, needed only to restore) are
// read from an age identity file as age-keygen writes it, or from an
// unencrypted OpenSSH private key.
//
// What it promises:
//   - Errors never contain secret key material: identity errors name the file
//     and line and say what is wrong, never the offending text. Recipient
//     errors quote at most a short prefix of a public entry, and nothing of an
//     entry that looks like a secret key.
//   - No logging and no package-level mutable state.
//   - Keygen never overwrites a file and leaves a durable 0600 file behind or
//     nothing at all.
//   - IsWrongKey tells "this identity cannot open that file" apart from
//     damage or I/O errors, so callers can say "wrong key".
package crypto
