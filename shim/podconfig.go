package shim

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// podSandboxConfig is what husk reads of the CRI's runtime.v1.PodSandboxConfig
// (k8s.io/cri-api), decoded from the wire by field number: linking the
// CRI's generated package into every shim would cost each shim 1.1 MB of
// binary and 0.9 ms and 240 kB of heap at start (its descriptors' init),
// for the dozen fields below. Unknown fields are skipped, as protobuf
// does. (A test checks the decoder against cri-api's own encoding.)
type podSandboxConfig struct {
	Name, UID, Namespace string // metadata = 1: name = 1, uid = 2, namespace = 3
	Hostname             string // 2
	LogDirectory         string // 3
	DNS                  dnsConfig
	Annotations          map[string]string // 7
	Linux                linuxPodConfig    // 8
}

// dnsConfig is DNSConfig (PodSandboxConfig field 4).
type dnsConfig struct {
	Servers, Searches, Options []string // 1, 2, 3
}

// linuxPodConfig is LinuxPodSandboxConfig.
type linuxPodConfig struct {
	CgroupParent string            // 1
	Namespaces   namespaceOption   // security_context = 2 → namespace_options = 1
	Sysctls      map[string]string // 3
	Resources    *podResources     // 5
}

// namespaceMode is the CRI's NamespaceMode.
type namespaceMode uint64

// The CRI's NamespaceMode values.
const (
	nsPod       namespaceMode = 0
	nsContainer namespaceMode = 1
	nsNode      namespaceMode = 2
)

// namespaceOption is NamespaceOption: network = 1, pid = 2, ipc = 3.
type namespaceOption struct {
	Network, PID, IPC namespaceMode
}

// podResources is LinuxContainerResources: cpu_period = 1, cpu_quota = 2,
// cpu_shares = 3, memory_limit_in_bytes = 4.
type podResources struct {
	CPUPeriod, CPUQuota, CPUShares, Memory int64
}

// wireField is one field of a message: bytes for a length-delimited
// field, varint for a varint.
type wireField struct {
	num    protowire.Number
	typ    protowire.Type
	bytes  []byte
	varint uint64
}

// eachField calls fn with each field of the message b, stopping at the
// first error.
func eachField(b []byte, fn func(f wireField) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := wireField{num: num, typ: typ}
		switch typ {
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// errWireType: a field of the wrong wire type.
var errWireType = errors.New("field of the wrong wire type")

// str and msg read a length-delimited field; num a varint one.
func (f wireField) str() (string, error) {
	if f.typ != protowire.BytesType {
		return "", fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return string(f.bytes), nil
}

func (f wireField) msg() ([]byte, error) {
	if f.typ != protowire.BytesType {
		return nil, fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return f.bytes, nil
}

func (f wireField) num64() (uint64, error) {
	if f.typ != protowire.VarintType {
		return 0, fmt.Errorf("field %d: %w", f.num, errWireType)
	}
	return f.varint, nil
}

// mapEntry adds the map<string, string> entry in b (key = 1, value = 2)
// to m.
func mapEntry(m map[string]string, b []byte) error {
	var k, v string
	err := eachField(b, func(f wireField) (err error) {
		switch f.num {
		case 1:
			k, err = f.str()
		case 2:
			v, err = f.str()
		}
		return err
	})
	m[k] = v
	return err
}

// decodePodSandboxConfig decodes the wire form of a PodSandboxConfig.
func decodePodSandboxConfig(b []byte) (*podSandboxConfig, error) {
	c := &podSandboxConfig{Annotations: map[string]string{}}
	c.Linux.Sysctls = map[string]string{}
	err := eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			var m []byte
			if m, err = f.msg(); err == nil {
				err = eachField(m, func(f wireField) (err error) {
					switch f.num {
					case 1:
						c.Name, err = f.str()
					case 2:
						c.UID, err = f.str()
					case 3:
						c.Namespace, err = f.str()
					}
					return err
				})
			}
		case 2:
			c.Hostname, err = f.str()
		case 3:
			c.LogDirectory, err = f.str()
		case 4:
			var m []byte
			if m, err = f.msg(); err == nil {
				err = eachField(m, func(f wireField) error {
					s, err := f.str()
					switch f.num {
					case 1:
						c.DNS.Servers = append(c.DNS.Servers, s)
					case 2:
						c.DNS.Searches = append(c.DNS.Searches, s)
					case 3:
						c.DNS.Options = append(c.DNS.Options, s)
					default:
						return nil
					}
					return err
				})
			}
		case 7:
			var m []byte
			if m, err = f.msg(); err == nil {
				err = mapEntry(c.Annotations, m)
			}
		case 8:
			var m []byte
			if m, err = f.msg(); err == nil {
				err = decodeLinuxPod(&c.Linux, m)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func decodeLinuxPod(l *linuxPodConfig, b []byte) error {
	return eachField(b, func(f wireField) error {
		var err error
		switch f.num {
		case 1:
			l.CgroupParent, err = f.str()
		case 2: // security_context
			var m []byte
			if m, err = f.msg(); err == nil {
				err = eachField(m, func(f wireField) error {
					if f.num != 1 { // namespace_options
						return nil
					}
					m, err := f.msg()
					if err != nil {
						return err
					}
					return eachField(m, func(f wireField) error {
						var dst *namespaceMode
						switch f.num {
						case 1:
							dst = &l.Namespaces.Network
						case 2:
							dst = &l.Namespaces.PID
						case 3:
							dst = &l.Namespaces.IPC
						default:
							return nil
						}
						v, err := f.num64()
						*dst = namespaceMode(v)
						return err
					})
				})
			}
		case 3:
			var m []byte
			if m, err = f.msg(); err == nil {
				err = mapEntry(l.Sysctls, m)
			}
		case 5:
			var m []byte
			if m, err = f.msg(); err == nil {
				r := &podResources{}
				l.Resources = r
				err = eachField(m, func(f wireField) error {
					var dst *int64
					switch f.num {
					case 1:
						dst = &r.CPUPeriod
					case 2:
						dst = &r.CPUQuota
					case 3:
						dst = &r.CPUShares
					case 4:
						dst = &r.Memory
					default:
						return nil
					}
					v, err := f.num64()
					*dst = int64(v) // int64 fields are two's complement varints
					return err
				})
			}
		}
		return err
	})
}
