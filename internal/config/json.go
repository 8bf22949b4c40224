package config

import (
	"bytes"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/internal/diag"
)

// MarshalJSON writes the model with fields in declaration order, durations
// as strings ("1.5s"), positions as "file:line:col", addresses as text and
// byte strings in hex. Empty fields tagged omitempty/omitzero are left out.
func (c *Config) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	if err := encodeJSON(&b, reflect.ValueOf(*c), 0, true); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	posType      = reflect.TypeFor[diag.Pos]()
	textType     = reflect.TypeFor[encoding.TextMarshaler]()
)

func encodeJSON(b *bytes.Buffer, v reflect.Value, depth int, top bool) error {
	indent := func(d int) {
		b.WriteByte('\n')
		b.WriteString(strings.Repeat("  ", d))
	}
	t := v.Type()
	switch {
	case t == durationType:
		writeString(b, time.Duration(v.Int()).String())
		return nil
	case t == posType:
		writeString(b, v.Interface().(diag.Pos).String())
		return nil
	case t.Implements(textType) && t.Kind() != reflect.Pointer:
		txt, err := v.Interface().(encoding.TextMarshaler).MarshalText()
		if err != nil {
			return err
		}
		writeString(b, string(txt))
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			b.WriteString("null")
			return nil
		}
		return encodeJSON(b, v.Elem(), depth, false)
	case reflect.Struct:
		b.WriteByte('{')
		n := 0
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if name == "" {
				name = f.Name
			}
			fv := v.Field(i)
			if (strings.Contains(opts, "omitempty") || strings.Contains(opts, "omitzero")) && isEmpty(fv) {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			indent(depth + 1)
			writeString(b, name)
			b.WriteString(": ")
			if err := encodeJSON(b, fv, depth+1, false); err != nil {
				return err
			}
			n++
		}
		if n > 0 {
			indent(depth)
		}
		b.WriteByte('}')
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			writeString(b, hex.EncodeToString(v.Bytes()))
			return nil
		}
		if v.Len() == 0 {
			b.WriteString("[]")
			return nil
		}
		simple := isScalar(t.Elem())
		b.WriteByte('[')
		for i := 0; i < v.Len(); i++ {
			if i > 0 {
				b.WriteByte(',')
				if simple {
					b.WriteByte(' ')
				}
			}
			if !simple {
				indent(depth + 1)
			}
			if err := encodeJSON(b, v.Index(i), depth+1, false); err != nil {
				return err
			}
		}
		if !simple {
			indent(depth)
		}
		b.WriteByte(']')
	case reflect.String:
		writeString(b, v.String())
	case reflect.Bool:
		b.WriteString(strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		b.WriteString(strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		b.WriteString(strconv.FormatUint(v.Uint(), 10))
	default:
		return fmt.Errorf("config: cannot encode %s", t)
	}
	if top {
		b.WriteByte('\n')
	}
	return nil
}

func isScalar(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Uint16, reflect.Uint32:
		return true
	}
	return t.Implements(textType)
}

func isEmpty(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() == 0
	case reflect.Pointer, reflect.Interface:
		return v.IsNil()
	}
	return v.IsZero()
}

func writeString(b *bytes.Buffer, s string) {
	j, _ := json.Marshal(s)
	b.Write(j)
}
