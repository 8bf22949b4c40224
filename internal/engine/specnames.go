package engine

import "github.com/vigil-ha/vigil/internal/runspec"

// The engine's spec types live in internal/runspec (made from the
// configuration by internal/translate); the engine names them as before.
type (
	Spec          = runspec.Spec
	InstanceSpec  = runspec.InstanceSpec
	ScriptSpec    = runspec.ScriptSpec
	FileSpec      = runspec.FileSpec
	TrackRef      = runspec.TrackRef
	SyncGroupSpec = runspec.SyncGroupSpec
)
