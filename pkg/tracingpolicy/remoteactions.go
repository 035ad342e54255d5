package tracingpolicy

import (
	"fmt"
	"net/url"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The actions the agent carries out in user space when a matching event
// arrives: an HTTP GET of ArgURL, a DNS lookup of ArgFQDN (Tetragon's
// canary triggers). The kernel only reports the match.
const (
	ActionGetURL    Action = "GetUrl"
	ActionDNSLookup Action = "DnsLookup"
)

// Remote reports whether the action is performed by the agent over the
// network when the event arrives.
func (a Action) Remote() bool { return a == ActionGetURL || a == ActionDNSLookup }

// maxURLLen bounds argUrl: it is sent as is on every matching event.
const maxURLLen = 2048

// ParseActionURL checks argUrl: an absolute http or https URL with a host.
// Other schemes are refused rather than handed to an HTTP client that would
// fail on every event.
func ParseActionURL(s string) (*url.URL, error) {
	if s == "" {
		return nil, fmt.Errorf("empty URL")
	}
	if len(s) > maxURLLen {
		return nil, fmt.Errorf("URL of %d bytes is longer than %d bytes", len(s), maxURLLen)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %v", truncate(s), unwrapURLError(err))
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
	case "":
		return nil, fmt.Errorf("URL %q has no scheme: want http:// or https://", truncate(s))
	default:
		return nil, fmt.Errorf("URL %q has scheme %q: want http or https", truncate(s), truncate(u.Scheme))
	}
	if u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("URL %q has no host", truncate(s))
	}
	if u.User != nil {
		// the URL is logged and shown in errors: no secrets in it
		return nil, fmt.Errorf("URL %q carries user information; put no credentials in a policy", truncate(u.Redacted()))
	}
	return u, nil
}

// unwrapURLError drops url.Error's repetition of the URL.
func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// CheckFQDN checks argFqdn: a DNS name of at most 253 bytes whose labels
// are 1 to 63 letters, digits, hyphens or underscores, not starting or
// ending with a hyphen. One trailing dot (the root) is allowed.
func CheckFQDN(s string) error {
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return fmt.Errorf("empty domain name")
	}
	if len(name) > 253 {
		return fmt.Errorf("domain name of %d bytes is longer than 253 bytes", len(name))
	}
	for i, label := range strings.Split(name, ".") {
		if label == "" {
			return fmt.Errorf("domain name %q has an empty label (label %d)", truncate(s), i)
		}
		if len(label) > 63 {
			return fmt.Errorf("domain name %q: label %d is %d bytes long, at most 63", truncate(s), i, len(label))
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("domain name %q: label %q starts or ends with a hyphen", truncate(s), truncate(label))
		}
		for j := 0; j < len(label); j++ {
			c := label[j]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return fmt.Errorf("domain name %q: label %q has byte %q (want letters, digits, '-' or '_')", truncate(s), truncate(label), c)
			}
		}
	}
	return nil
}

// supportedActions lists the actions this agent carries out, for errors.
const supportedActions = "Post, NoPost, Sigkill, Signal, Override, TrackSock, UntrackSock, GetUrl, DnsLookup, NotifyEnforcer (NotifyKiller), Set, Regs"

// remoteActionArgs checks that GetUrl has argUrl and DnsLookup argFqdn,
// and that neither field is given to another action.
func (d *decoder) remoteActionArgs(a ActionSelector, n *yaml.Node, p fieldPath, urlNode, fqdnNode *yaml.Node) {
	switch a.Action {
	case ActionGetURL:
		if urlNode == nil {
			d.errorf(n, p, "action GetUrl needs argUrl (the http:// or https:// URL to request)")
		}
	case ActionDNSLookup:
		if fqdnNode == nil {
			d.errorf(n, p, "action DnsLookup needs argFqdn (the domain name to look up)")
		}
	}
	if urlNode != nil && a.Action != ActionGetURL {
		d.errorf(urlNode, p.field("argUrl"), "argUrl applies to action GetUrl only")
	}
	if fqdnNode != nil && a.Action != ActionDNSLookup {
		d.errorf(fqdnNode, p.field("argFqdn"), "argFqdn applies to action DnsLookup only")
	}
}
