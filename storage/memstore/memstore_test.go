package memstore_test

import (
	"testing"

	"github.com/walvault/walvault/storage"
	"github.com/walvault/walvault/storage/memstore"
	"github.com/walvault/walvault/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(*testing.T) storage.Store { return memstore.New() })
}
