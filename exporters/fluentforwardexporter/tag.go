package fluentforwardexporter

import (
	"fmt"
	"strings"
)

// defaultTag is the tag template used when the config sets none.
const defaultTag = "kube.<namespace>.<pod>.<container>"

// tagField is one placeholder a tag template may contain.
type tagField uint8

const (
	tagLiteral tagField = iota
	tagNamespace
	tagPod
	tagContainer
)

// tagPart is a literal or a placeholder of a parsed template.
type tagPart struct {
	field   tagField
	literal string
}

// tagTemplate is a parsed tag template.
type tagTemplate []tagPart

// missingTagValue replaces a placeholder whose attribute is absent or empty.
const missingTagValue = "_"

// parseTagTemplate splits s into literals and <namespace>, <pod>, <container>
// placeholders. Any other <...> is an error, as is an empty template.
func parseTagTemplate(s string) (tagTemplate, error) {
	if s == "" {
		return nil, fmt.Errorf("must not be empty (e.g. %q)", defaultTag)
	}
	var t tagTemplate
	rest := s
	for rest != "" {
		i := strings.IndexByte(rest, '<')
		if i < 0 {
			t = append(t, tagPart{literal: rest})
			break
		}
		if i > 0 {
			t = append(t, tagPart{literal: rest[:i]})
		}
		j := strings.IndexByte(rest[i:], '>')
		if j < 0 {
			return nil, fmt.Errorf("unclosed '<' in %q", s)
		}
		name := rest[i+1 : i+j]
		switch name {
		case "namespace":
			t = append(t, tagPart{field: tagNamespace})
		case "pod":
			t = append(t, tagPart{field: tagPod})
		case "container":
			t = append(t, tagPart{field: tagContainer})
		default:
			return nil, fmt.Errorf("unknown placeholder <%s> in %q (allowed: <namespace>, <pod>, <container>)", name, s)
		}
		rest = rest[i+j+1:]
	}
	return t, nil
}

// appendTag renders the template for one resource into dst.
func (t tagTemplate) appendTag(dst []byte, namespace, pod, container string) []byte {
	for _, p := range t {
		v := p.literal
		switch p.field {
		case tagNamespace:
			v = namespace
		case tagPod:
			v = pod
		case tagContainer:
			v = container
		}
		if v == "" && p.field != tagLiteral {
			v = missingTagValue
		}
		dst = append(dst, v...)
	}
	return dst
}
