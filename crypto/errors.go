package crypto

import (
	"errors"
	"fmt"

	"filippo.io/age"
)

// ErrNoIdentityMatch means none of the identities given can open an age
// file: it was encrypted to other recipients ("wrong key"). It is distinct
// from a damaged or truncated file.
var ErrNoIdentityMatch = errors.New("no identity matches the file's recipients (wrong key?)")

// WrapDecryptError returns err wrapped so that errors.Is(err,
// ErrNoIdentityMatch) holds when err is, or wraps, age's
// *age.NoIdentityMatchError. Other errors, and nil, are returned unchanged.
// The original error stays in the chain.
func WrapDecryptError(err error) error {
	var nm *age.NoIdentityMatchError
	if err == nil || errors.Is(err, ErrNoIdentityMatch) || !errors.As(err, &nm) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrNoIdentityMatch, err)
}

// IsWrongKey reports whether err says that the identities used cannot open
// the file, as opposed to the file being damaged or unreadable. It accepts
// errors from age.Decrypt directly (*age.NoIdentityMatchError) as well as
// errors wrapped by WrapDecryptError.
func IsWrongKey(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrNoIdentityMatch) {
		return true
	}
	var nm *age.NoIdentityMatchError
	return errors.As(err, &nm)
}
