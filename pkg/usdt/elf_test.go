package usdt

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"testing"
)

// noteFile builds an x86-64 ELF file with one executable segment at
// 0x1000 (file offset 0x1000, 0x1000 bytes) and a .note.stapsdt section
// holding notes.
func noteFile(t *testing.T, notes []byte) *elf.File {
	t.Helper()
	const phoff, shoff = 64, 128
	shstr := []byte("\x00.note.stapsdt\x00.shstrtab\x00")
	noteOff := uint64(0x2000)
	strOff := noteOff + uint64(len(notes))
	var b bytes.Buffer
	le := binary.LittleEndian
	hdr := elf.Header64{
		Ident:     [16]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT)},
		Type:      uint16(elf.ET_DYN),
		Machine:   uint16(elf.EM_X86_64),
		Version:   uint32(elf.EV_CURRENT),
		Phoff:     phoff,
		Shoff:     shoff,
		Ehsize:    64,
		Phentsize: 56,
		Phnum:     1,
		Shentsize: 64,
		Shnum:     3,
		Shstrndx:  2,
	}
	binary.Write(&b, le, hdr)
	binary.Write(&b, le, elf.Prog64{Type: uint32(elf.PT_LOAD), Flags: uint32(elf.PF_X | elf.PF_R), Off: 0x1000, Vaddr: 0x1000, Filesz: 0x1000, Memsz: 0x1000})
	b.Write(make([]byte, shoff-b.Len()))
	binary.Write(&b, le, elf.Section64{})
	binary.Write(&b, le, elf.Section64{Name: 1, Type: uint32(elf.SHT_NOTE), Off: noteOff, Size: uint64(len(notes)), Addralign: 4})
	binary.Write(&b, le, elf.Section64{Name: 15, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1})
	b.Write(make([]byte, int(noteOff)-b.Len()))
	b.Write(notes)
	b.Write(shstr)
	f, err := elf.NewFile(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// The note of FuzzNotes' seed: a probe at 0x1010, in the segment.
func TestNoteFile(t *testing.T) {
	var n bytes.Buffer
	le := binary.LittleEndian
	desc := append(make([]byte, 24), "p\x00n\x00-4@%eax\x00"...)
	le.PutUint64(desc, 0x1010)
	binary.Write(&n, le, [3]uint32{8, uint32(len(desc)), ntSTAPSDT})
	n.WriteString("stapsdt\x00")
	n.Write(desc)
	n.Write(make([]byte, (4-len(desc)%4)%4))
	probes, err := FromELF(noteFile(t, n.Bytes()))
	if err != nil || len(probes) != 1 {
		t.Fatalf("%+v, %v", probes, err)
	}
	if p := probes[0]; p.Provider != "p" || p.Name != "n" || p.Offset != 0x1010 || p.Semaphore != 0 || len(p.Args) != 1 {
		t.Fatalf("%+v", p)
	}
	// outside the segment
	le.PutUint64(desc, 0x3000)
	n.Reset()
	binary.Write(&n, le, [3]uint32{8, uint32(len(desc)), ntSTAPSDT})
	n.WriteString("stapsdt\x00")
	n.Write(desc)
	n.Write(make([]byte, (4-len(desc)%4)%4))
	if _, err := FromELF(noteFile(t, n.Bytes())); err == nil {
		t.Fatal("a probe outside every executable segment was read")
	}
	if _, err := FromELF(noteFile(t, []byte{1, 2, 3})); err == nil {
		t.Fatal("a truncated note was read")
	}
}
