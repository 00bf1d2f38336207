package jpegscale

import (
	"fmt"
	"runtime"
	"sync"
)

// maxPad bounds the zero bytes fed past a marker or the end of data within
// one restart interval before the stream is declared truncated.
const maxPad = 1 << 12

// blockRef places one decoded block: component index and block coordinates.
type blockRef struct {
	comp   uint8
	bx, by int32
}

// rowJob carries the dequantized low-frequency coefficients of one MCU row
// (n*n per block) from the entropy decoder to the IDCT worker.
type rowJob struct {
	coef []int32
	refs []blockRef
}

// decodeScan decodes one sequential scan (T.81 F.2), MCU by MCU.
func (d *decoder) decodeScan(sc []*component) error {
	d.resetBits()
	for _, c := range sc {
		c.pred = 0
	}
	// Geometry: an interleaved scan walks MCUs; a single-component scan
	// walks that component's blocks (A.2.2), which need not fill its MCUs.
	var rowsTotal, colsTotal int
	if len(sc) == 1 {
		c := sc[0]
		colsTotal = (((d.width*c.h + d.hmax - 1) / d.hmax) + 7) / 8
		rowsTotal = (((d.height*c.v + d.vmax - 1) / d.vmax) + 7) / 8
	} else {
		colsTotal, rowsTotal = d.mcusX, d.mcusY
	}
	blocksPerRow := 0
	for _, c := range sc {
		if len(sc) == 1 {
			blocksPerRow = colsTotal
		} else {
			blocksPerRow += colsTotal * c.h * c.v
		}
	}
	if len(sc) > 1 && d.ri > 0 && !d.sequential && runtime.GOMAXPROCS(0) > 1 {
		if ok, err := d.decodeScanSplit(sc, colsTotal, rowsTotal); ok {
			return err
		}
	}
	nn := d.n * d.n
	useWorker := !d.sequential && d.n >= 4 && runtime.GOMAXPROCS(0) > 1 && rowsTotal > 4
	if useWorker {
		d.startWorker(blocksPerRow, nn)
	}
	job := &rowJob{coef: make([]int32, blocksPerRow*nn), refs: make([]blockRef, 0, blocksPerRow)}
	if useWorker {
		job = <-d.free
	}
	var compIdx [4]uint8
	for i, c := range sc {
		for j := range d.comps {
			if &d.comps[j] == c {
				compIdx[i] = uint8(j)
			}
		}
	}
	mcu := 0
	for my := 0; my < rowsTotal; my++ {
		job.refs = job.refs[:0]
		for mx := 0; mx < colsTotal; mx++ {
			if d.ri > 0 && mcu > 0 && mcu%d.ri == 0 {
				if err := d.restart(sc); err != nil {
					return err
				}
			}
			mcu++
			for i, c := range sc {
				hb, vb := c.h, c.v
				if len(sc) == 1 {
					hb, vb = 1, 1
				}
				for y := 0; y < vb; y++ {
					for x := 0; x < hb; x++ {
						off := len(job.refs) * nn
						out := job.coef[off : off+nn]
						if err := d.decodeBlock(c, out); err != nil {
							return err
						}
						job.refs = append(job.refs, blockRef{compIdx[i], int32(mx*hb + x), int32(my*vb + y)})
					}
				}
			}
			if d.pad > maxPad {
				return d.errf("truncated entropy-coded data")
			}
		}
		if useWorker {
			if err := d.workerErr(); err != nil {
				return err
			}
			d.work <- job
			job = <-d.free
		} else {
			d.runJob(job)
		}
	}
	if useWorker {
		d.free <- job
		d.stopWorker()
		if err := d.workerErr(); err != nil {
			return err
		}
	}
	// Leave pos at the next marker.
	if !d.marker {
		for d.pos < len(d.data) && !(d.data[d.pos] == 0xFF && d.pos+1 < len(d.data) && d.data[d.pos+1] != 0) {
			d.pos++
		}
	}
	d.resetBits()
	return nil
}

// restart consumes an RSTn marker and resets the predictors (T.81 F.2.1.3.1).
func (d *decoder) restart(sc []*component) error {
	if !d.marker {
		// Skip to the marker; there may be padding bits left in bytes we
		// have not read yet.
		for d.pos < len(d.data) && !(d.data[d.pos] == 0xFF && d.pos+1 < len(d.data) && d.data[d.pos+1] != 0 && d.data[d.pos+1] != 0xFF) {
			d.pos++
		}
	}
	for d.pos < len(d.data) && d.data[d.pos] == 0xFF && d.pos+1 < len(d.data) && d.data[d.pos+1] == 0xFF {
		d.pos++ // fill bytes
	}
	if d.pos+1 < len(d.data) && d.data[d.pos+1] >= mRST0 && d.data[d.pos+1] <= mRST7 {
		d.pos += 2
	} else {
		// A missing restart marker: resynchronise as libjpeg would by
		// simply resetting; the data that follows may decode as gray.
		if d.pos >= len(d.data) {
			return d.errf("truncated at restart interval")
		}
	}
	d.resetBits()
	for _, c := range sc {
		c.pred = 0
	}
	return nil
}

// decodeBlock decodes one 8×8 block's coefficients (T.81 F.2.2) and writes
// the dequantized ones an n×n IDCT needs into out (natural n×n order).
func (d *decoder) decodeBlock(c *component, out []int32) error {
	clear(out)
	q := &d.quant[c.tq]
	t, ok := d.decodeHuff(&d.huff[0][c.td])
	if !ok {
		return d.errf("bad Huffman code")
	}
	if t > 11 {
		return d.errf("bad DC magnitude category %d", t)
	}
	if t > 0 {
		c.pred += d.receiveExtend(uint(t))
	}
	out[0] = c.pred * q[0]
	ac := &d.huff[1][c.ta]
	kmax := d.kmax
	for k := 1; k < 64; {
		// Keep 32 bits at hand: a code (≤ 16) and its extra bits (≤ 16).
		if d.nbits < 32 {
			d.fill()
		}
		var rs uint8
		if e := ac.lookup[d.acc>>(64-lookBits)]; e != 0 {
			l := uint(e >> 8)
			d.acc <<= l
			d.nbits -= l
			rs = uint8(e)
		} else {
			var ok bool
			if rs, ok = d.decodeHuffSlow(ac); !ok {
				return d.errf("bad Huffman code")
			}
		}
		r, s := int(rs>>4), uint(rs&15)
		if s == 0 {
			if r != 15 {
				break // EOB
			}
			k += 16
			continue
		}
		k += r
		if k > 63 {
			return d.errf("coefficient index out of range")
		}
		if k <= kmax && d.small[k] >= 0 {
			// Receive and extend (F.2.2.1) inline.
			v := int32(d.acc >> (64 - s))
			if v < 1<<(s-1) {
				v += -1<<s + 1
			}
			out[d.small[k]] = v * q[k]
		}
		d.acc <<= s
		d.nbits -= s
		k++
	}
	return nil
}

// runJob transforms every block of a row into its component plane.
func (d *decoder) runJob(job *rowJob) {
	nn := d.n * d.n
	for i, r := range job.refs {
		c := &d.comps[r.comp]
		if int(r.bx) >= c.bw || int(r.by) >= c.bh {
			continue
		}
		dst := c.plane[int(r.by)*d.n*c.stride+int(r.bx)*d.n:]
		d.idct.transform(job.coef[i*nn:(i+1)*nn], dst, c.stride)
	}
}

func (d *decoder) startWorker(blocksPerRow, nn int) {
	d.work = make(chan *rowJob, 1)
	d.free = make(chan *rowJob, 2)
	d.done = make(chan struct{})
	for i := 0; i < 2; i++ {
		d.free <- &rowJob{coef: make([]int32, blocksPerRow*nn), refs: make([]blockRef, 0, blocksPerRow)}
	}
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		defer func() {
			if p := recover(); p != nil {
				d.werrMu.Lock()
				d.werr = fmt.Errorf("jpegscale: IDCT worker panic: %v", p)
				d.werrMu.Unlock()
				// Keep draining so the decoder never blocks.
				for job := range d.work {
					d.free <- job
				}
			}
		}()
		for job := range d.work {
			d.runJob(job)
			d.free <- job
		}
	}()
}

func (d *decoder) stopWorker() {
	if d.work != nil {
		close(d.work)
		d.wg.Wait()
		d.work = nil
	}
}

func (d *decoder) workerErr() error {
	d.werrMu.Lock()
	defer d.werrMu.Unlock()
	return d.werr
}

// decodeScanSplit decodes an interleaved scan that has restart markers on
// two goroutines: restart intervals are independent (T.81 F.2.1.3.1: the
// predictors reset and the data is byte-aligned), so after locating every
// RSTn the first half of the intervals and the second half are decoded
// concurrently, each with the IDCT inline, into disjoint blocks of the same
// planes. It reports false, having consumed nothing, when the markers do not
// match the expected count; the caller then decodes sequentially.
func (d *decoder) decodeScanSplit(sc []*component, cols, rows int) (bool, error) {
	total := cols * rows
	intervals := (total + d.ri - 1) / d.ri
	if intervals < 2 {
		return false, nil
	}
	var starts []int // entropy data start of each interval after the first
	end := len(d.data)
	for p := d.pos; p+1 < len(d.data); p++ {
		if d.data[p] != 0xFF {
			continue
		}
		nb := d.data[p+1]
		switch {
		case nb == 0x00: // stuffed byte
			p++
			continue
		case nb == 0xFF: // fill byte: look at the next one
			continue
		case nb >= mRST0 && nb <= mRST7:
			starts = append(starts, p+2)
			p++
			continue
		}
		end = p
		break
	}
	if len(starts) != intervals-1 {
		return false, nil
	}
	half := intervals / 2
	type part struct {
		pos, m0, m1 int
	}
	parts := [2]part{{d.pos, 0, half * d.ri}, {starts[half-1], half * d.ri, total}}
	errs := [2]error{}
	var wg sync.WaitGroup
	for i, pt := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("jpegscale: decoder panic: %v", p)
				}
			}()
			sub := &decoder{data: d.data[:end], pos: pt.pos, n: d.n, quant: d.quant, huff: d.huff,
				small: d.small, kmax: d.kmax, idct: d.idct, ri: d.ri}
			sub.comps = append([]component(nil), d.comps...)
			subSC := make([]*component, len(sc))
			for j, c := range sc {
				subSC[j] = &sub.comps[c.id2index(d.comps)]
			}
			errs[i] = sub.decodeMCUs(subSC, cols, pt.m0, pt.m1)
		}()
	}
	wg.Wait()
	if errs[0] != nil {
		return true, errs[0]
	}
	if errs[1] != nil {
		return true, errs[1]
	}
	d.pos = end
	d.resetBits()
	return true, nil
}

// id2index finds c among comps.
func (c *component) id2index(comps []component) int {
	for i := range comps {
		if comps[i].id == c.id {
			return i
		}
	}
	return 0
}

// decodeMCUs decodes MCUs [m0, m1) of an interleaved scan starting at a
// restart boundary, transforming each block at once.
func (d *decoder) decodeMCUs(sc []*component, cols, m0, m1 int) error {
	d.resetBits()
	for _, c := range sc {
		c.pred = 0
	}
	nn := d.n * d.n
	coef := make([]int32, nn)
	for mcu := m0; mcu < m1; mcu++ {
		if mcu > m0 && mcu%d.ri == 0 {
			if err := d.restart(sc); err != nil {
				return err
			}
		}
		mx, my := mcu%cols, mcu/cols
		for _, c := range sc {
			for y := 0; y < c.v; y++ {
				for x := 0; x < c.h; x++ {
					if err := d.decodeBlock(c, coef); err != nil {
						return err
					}
					bx, by := mx*c.h+x, my*c.v+y
					if bx < c.bw && by < c.bh {
						d.idct.transform(coef, c.plane[by*d.n*c.stride+bx*d.n:], c.stride)
					}
				}
			}
		}
		if d.pad > maxPad {
			return d.errf("truncated entropy-coded data")
		}
	}
	return nil
}
