package adapt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/image/draw"

	"github.com/mmsrelay/mmsrelay/adapt/internal/jpegenc"
	"github.com/mmsrelay/mmsrelay/adapt/internal/testimg"
	"github.com/mmsrelay/mmsrelay/adapt/jpegscale"
)

// The benchmarks adapt a 12-megapixel (4000×3000, quality 90) synthetic
// photo to the default profile (1600×1200, 600 KiB) three ways: the naive
// standard-library pipeline, FitImage, and Debian's vipsthumbnail. After the
// timed loop each one is run once more in a child process to report its
// peak resident memory (VmHWM, or /usr/bin/time's maximum RSS) as the
// "peak-MiB" metric. See BENCHMARKS.md at the repository root.

const (
	childEnv = "ADAPT_BENCH_CHILD" // "stdlib" or "ours": run once, print VmHWM
	fileEnv  = "ADAPT_BENCH_FILE"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(runChild(mode, os.Getenv(fileEnv)))
	}
	os.Exit(m.Run())
}

func runChild(mode, path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	switch mode {
	case "stdlib":
		err = naive(data, io.Discard)
	case "ours":
		var im Image
		im, err = FitImage(context.Background(), data, 600*1024, Profiles()[0])
		_ = im
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("VmHWM-kB", vmHWM())
	return 0
}

// vmHWM reads this process's peak resident set size in kB.
func vmHWM() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return -1
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.Fields(rest)[0])
			return n
		}
	}
	return -1
}

// naive is the straightforward pipeline: full decode, Catmull-Rom scale to
// 1600×1200 with x/image/draw, encode at quality 85.
func naive(data []byte, w io.Writer) error {
	src, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return err
	}
	b := src.Bounds()
	tw, th := fitDims(b.Dx(), b.Dy(), 1600, 1200)
	dst := image.NewRGBA(image.Rect(0, 0, tw, th))
	draw.CatmullRom.Scale(dst, dst.Rect, src, b, draw.Src, nil)
	return jpeg.Encode(w, dst, &jpeg.Options{Quality: 85})
}

func photo12MP(b *testing.B) (string, []byte) {
	b.Helper()
	p, err := testimg.CachedPhotoJPEG(4000, 3000)
	if err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		b.Fatal(err)
	}
	return p, data
}

// cpuTime returns the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// childCPU returns the CPU time of waited-for children.
func childCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loop runs f b.N times and reports CPU milliseconds per op besides wall
// time: on a shared, loaded machine CPU time is the steadier figure.
func loop(b *testing.B, f func()) {
	c0 := cpuTime()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(time.Millisecond)/float64(max(n, 1)), "cpu-ms/op")
}

// peakChild runs this test binary in child mode and returns its VmHWM in MiB.
func peakChild(b *testing.B, mode, path string) float64 {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode, fileEnv+"="+path)
	out, err := cmd.Output()
	if err != nil {
		b.Logf("peak memory child %s: %v", mode, err)
		return -1
	}
	var kb int
	if _, err := fmt.Sscanf(string(out), "VmHWM-kB %d", &kb); err != nil {
		return -1
	}
	return float64(kb) / 1024
}

func BenchmarkAdapt12MP(b *testing.B) {
	path, data := photo12MP(b)
	b.Run("stdlib", func(b *testing.B) {
		loop(b, func() {
			if err := naive(data, io.Discard); err != nil {
				b.Fatal(err)
			}
		})
		b.StopTimer()
		b.ReportMetric(peakChild(b, "stdlib", path), "peak-MiB")
	})
	b.Run("ours", func(b *testing.B) {
		var size int
		loop(b, func() {
			im, err := FitImage(context.Background(), data, 600*1024, Profiles()[0])
			if err != nil {
				b.Fatal(err)
			}
			size = len(im.Data)
		})
		b.StopTimer()
		b.ReportMetric(float64(size)/1024, "out-KiB")
		b.ReportMetric(peakChild(b, "ours", path), "peak-MiB")
		// Quality: PSNR of our output against the naive pipeline's.
		im, _ := FitImage(context.Background(), data, 600*1024, Profiles()[0])
		var ref bytes.Buffer
		naive(data, &ref)
		b.ReportMetric(psnrJPEG(b, im.Data, ref.Bytes()), "dB-vs-stdlib")
	})
	b.Run("vipsthumbnail", func(b *testing.B) {
		vt, err := exec.LookPath("vipsthumbnail")
		if err != nil {
			b.Skip("vipsthumbnail not installed (apt-get install libvips-tools)")
		}
		out := filepath.Join(b.TempDir(), "out.jpg")
		args := []string{path, "-s", "1600x1200", "-o", out + "[Q=85]"}
		c0 := childCPU()
		n := 0
		for b.Loop() {
			if msg, err := exec.Command(vt, args...).CombinedOutput(); err != nil {
				b.Fatalf("vipsthumbnail: %v %s", err, msg)
			}
			n++
		}
		b.ReportMetric(float64(childCPU()-c0)/float64(time.Millisecond)/float64(max(n, 1)), "cpu-ms/op")
		b.StopTimer()
		if vd, err := os.ReadFile(out); err == nil {
			b.ReportMetric(float64(len(vd))/1024, "out-KiB")
			var ref bytes.Buffer
			naive(data, &ref)
			b.ReportMetric(psnrJPEG(b, vd, ref.Bytes()), "dB-vs-stdlib")
		}
		if _, err := os.Stat("/usr/bin/time"); err == nil {
			cmd := exec.Command("/usr/bin/time", append([]string{"-f", "%M", vt}, args...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err == nil {
				lines := strings.Fields(stderr.String())
				if kb, err := strconv.Atoi(lines[len(lines)-1]); err == nil {
					b.ReportMetric(float64(kb)/1024, "peak-MiB")
				}
			}
		}
	})
}

func BenchmarkResizeYCbCr(b *testing.B) {
	src := image.NewYCbCr(image.Rect(0, 0, 2000, 1500), image.YCbCrSubsampleRatio420)
	for i := range src.Y {
		src.Y[i] = uint8(i * 7)
	}
	loop(b, func() { resizeYCbCr(src, 1600, 1200, 2) })
}

// BenchmarkSteps measures the pipeline one optimisation at a time on the
// 12 MP photo, and each stage on its own.
func BenchmarkSteps(b *testing.B) {
	_, data := photo12MP(b)
	stdEncode := func(m image.Image) {
		if err := jpeg.Encode(io.Discard, m, &jpeg.Options{Quality: maxQuality}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("1-naive-stdlib", func(b *testing.B) {
		loop(b, func() { naive(data, io.Discard) })
	})
	b.Run("2-stdlib-decode+plane-resize", func(b *testing.B) {
		loop(b, func() {
			m, _ := jpeg.Decode(bytes.NewReader(data))
			stdEncode(resize(m, 1600, 1200, 2))
		})
	})
	b.Run("3-scaled-decode-sequential", func(b *testing.B) {
		loop(b, func() {
			m, err := jpegscale.Decode(data, jpegscale.Options{Scale: 2, Sequential: true})
			if err != nil {
				b.Fatal(err)
			}
			stdEncode(resize(m, 1600, 1200, 2))
		})
	})
	b.Run("4-scaled-decode-parallel-idct", func(b *testing.B) {
		loop(b, func() {
			m, _ := jpegscale.Decode(data, jpegscale.Options{Scale: 2})
			stdEncode(resize(m, 1600, 1200, 2))
		})
	})
	b.Run("5-parallel-planar-encoder", func(b *testing.B) {
		loop(b, func() {
			m, _ := jpegscale.Decode(data, jpegscale.Options{Scale: 2})
			jpegenc.Encode(resize(m, 1600, 1200, 2).(*image.YCbCr), maxQuality, 0)
		})
	})
	m2, _ := jpegscale.Decode(data, jpegscale.Options{Scale: 2})
	small := resize(m2, 1600, 1200, 2)
	b.Run("stage-decode-stdlib-full", func(b *testing.B) {
		loop(b, func() { jpeg.Decode(bytes.NewReader(data)) })
	})
	b.Run("stage-decode-scale2", func(b *testing.B) {
		loop(b, func() { jpegscale.Decode(data, jpegscale.Options{Scale: 2}) })
	})
	b.Run("stage-resize-2000x1500-to-1600x1200", func(b *testing.B) {
		loop(b, func() { resize(m2, 1600, 1200, 2) })
	})
	b.Run("stage-encode-stdlib-q85", func(b *testing.B) {
		loop(b, func() { stdEncode(small) })
	})
	b.Run("stage-encode-ours-q85", func(b *testing.B) {
		loop(b, func() { jpegenc.Encode(small.(*image.YCbCr), maxQuality, 0) })
	})
}

// psnrJPEG decodes two JPEGs of the same size and returns their PSNR over RGB.
func psnrJPEG(b *testing.B, x, y []byte) float64 {
	mx, err1 := jpeg.Decode(bytes.NewReader(x))
	my, err2 := jpeg.Decode(bytes.NewReader(y))
	if err1 != nil || err2 != nil || mx.Bounds() != my.Bounds() {
		b.Logf("psnr: %v %v", err1, err2)
		return 0
	}
	var se float64
	n := 0
	r := mx.Bounds()
	for py := r.Min.Y; py < r.Max.Y; py++ {
		for px := r.Min.X; px < r.Max.X; px++ {
			r1, g1, b1, _ := mx.At(px, py).RGBA()
			r2, g2, b2, _ := my.At(px, py).RGBA()
			for _, d := range [3]float64{float64(r1>>8) - float64(r2>>8), float64(g1>>8) - float64(g2>>8), float64(b1>>8) - float64(b2>>8)} {
				se += d * d
				n++
			}
		}
	}
	return 10 * math.Log10(255*255/(se/float64(n)))
}
