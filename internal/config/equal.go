package config

import (
	"reflect"

	"github.com/vigil-ha/vigil/internal/diag"
)

// Equal reports whether two model values (a Config, a VRRPInstance, a
// VirtualServer, ...) are equal, ignoring where they were read from: every
// diag.Pos is skipped. A reload uses it to keep an instance whose
// configuration did not change running as it is, even when lines moved.
func Equal[T any](a, b T) bool {
	return equalValue(reflect.ValueOf(a), reflect.ValueOf(b))
}

func equalValue(a, b reflect.Value) bool {
	if a.Type() == posType {
		return true
	}
	switch a.Kind() {
	case reflect.Struct:
		if a.Type() == reflect.TypeFor[diag.Pos]() {
			return true
		}
		for i := 0; i < a.NumField(); i++ {
			if !equalValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := 0; i < a.Len(); i++ {
			if !equalValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.Pointer:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		return equalValue(a.Elem(), b.Elem())
	case reflect.Map:
		if a.Len() != b.Len() {
			return false
		}
		for _, k := range a.MapKeys() {
			bv := b.MapIndex(k)
			if !bv.IsValid() || !equalValue(a.MapIndex(k), bv) {
				return false
			}
		}
		return true
	case reflect.Interface:
		if a.IsNil() || b.IsNil() {
			return a.IsNil() == b.IsNil()
		}
		if a.Elem().Type() != b.Elem().Type() {
			return false
		}
		return equalValue(a.Elem(), b.Elem())
	}
	// netip.Addr and netip.Prefix are comparable structs with
	// unexported fields: compare them whole.
	return a.Equal(b)
}
