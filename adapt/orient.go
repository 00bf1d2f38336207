package adapt

import "image"

// srcCoord maps an output pixel (X, Y) of an image with EXIF orientation o
// to its source pixel in a w×h stored image (TIFF 6.0 Orientation: 2 mirror,
// 3 rotate 180°, 4 flip, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
// 8 rotate 90° counter-clockwise).
func srcCoord(o, X, Y, w, h int) (int, int) {
	switch o {
	case 2:
		return w - 1 - X, Y
	case 3:
		return w - 1 - X, h - 1 - Y
	case 4:
		return X, h - 1 - Y
	case 5:
		return Y, X
	case 6:
		return Y, h - 1 - X
	case 7:
		return w - 1 - Y, h - 1 - X
	case 8:
		return w - 1 - Y, X
	}
	return X, Y
}

// swapsAxes reports whether orientation o turns the image by 90°.
func swapsAxes(o int) bool { return o >= 5 && o <= 8 }

func orientPlane(src plane, o int) plane {
	W, H := src.w, src.h
	if swapsAxes(o) {
		W, H = H, W
	}
	c := src.c
	dst := plane{pix: make([]byte, W*H*c), stride: W * c, w: W, h: H, c: c}
	for Y := 0; Y < H; Y++ {
		row := dst.pix[Y*dst.stride:]
		for X := 0; X < W; X++ {
			x, y := srcCoord(o, X, Y, src.w, src.h)
			copy(row[X*c:X*c+c], src.pix[y*src.stride+x*c:])
		}
	}
	return dst
}

// orient applies EXIF orientation o to img. 4:2:0 YCbCr and gray images stay
// in their planes; others become RGBA.
func orient(img image.Image, o int) image.Image {
	if o < 2 || o > 8 {
		return img
	}
	switch m := img.(type) {
	case *image.YCbCr:
		if m.SubsampleRatio == image.YCbCrSubsampleRatio420 && m.Rect.Min == (image.Point{}) {
			w, h := m.Rect.Dx(), m.Rect.Dy()
			cw, ch := chromaDims(m.SubsampleRatio, w, h)
			y := orientPlane(plane{m.Y, m.YStride, w, h, 1}, o)
			cb := orientPlane(plane{m.Cb, m.CStride, cw, ch, 1}, o)
			cr := orientPlane(plane{m.Cr, m.CStride, cw, ch, 1}, o)
			return &image.YCbCr{Y: y.pix, Cb: cb.pix, Cr: cr.pix, YStride: y.stride, CStride: cb.stride,
				SubsampleRatio: m.SubsampleRatio, Rect: image.Rect(0, 0, y.w, y.h)}
		}
	case *image.Gray:
		if m.Rect.Min == (image.Point{}) {
			p := orientPlane(plane{m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy(), 1}, o)
			return &image.Gray{Pix: p.pix, Stride: p.stride, Rect: image.Rect(0, 0, p.w, p.h)}
		}
	}
	m := toRGBA(img)
	p := orientPlane(plane{m.Pix, m.Stride, m.Rect.Dx(), m.Rect.Dy(), 4}, o)
	return &image.RGBA{Pix: p.pix, Stride: p.stride, Rect: image.Rect(0, 0, p.w, p.h)}
}
