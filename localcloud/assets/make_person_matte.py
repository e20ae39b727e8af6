"""How person.jpg / person_alpha.png were made (kept for reproducibility; not run by
the project). Needs `skimage/data/astronaut.png` from the scikit-image 0.26.0 wheel:

    pip download scikit-image==0.26.0 --no-deps -d /tmp/ski && cd /tmp/ski && unzip -o *.whl 'skimage/data/astronaut.png'
    python localcloud/assets/make_person_matte.py /tmp/ski/skimage/data/astronaut.png localcloud/assets

1. A hand-drawn polygon (below, pixel coordinates of the 512x512 original, drawn
   on a magnified grid) around the person: hair, face, neck, suit collar ring,
   shoulders; the helmet she holds (lower right) is outside the crop.
2. OpenCV GrabCut, 8 iterations, initialised with the polygon: definite foreground
   = polygon eroded by 3 px, definite background = outside the polygon dilated by
   3 px, "probable" in between; the polygon kept as is in the bottom rows (y >= 320,
   where the body runs out of the picture); largest component kept, holes < 2000 px
   filled.
3. Feathered with a Gaussian of sigma 0.8 px (a soft edge), cropped to
   x 16..399, y 0..335 (384x336; the person is cut by the bottom edge).
"""
import os
import sys

import cv2
import numpy as np

POLYGON = [(228, 14), (255, 18), (278, 30), (294, 48), (302, 70), (301, 95), (297, 117), (282, 126),
           (266, 140), (262, 148), (259, 158), (256, 170), (256, 177), (263, 181), (271, 186), (279, 193),
           (285, 201), (290, 211), (294, 221), (298, 231), (304, 237), (312, 241), (326, 247), (343, 268),
           (354, 298), (360, 330), (362, 335), (30, 335), (33, 320), (40, 296), (52, 270), (72, 244),
           (98, 220), (112, 205), (116, 188), (126, 168), (142, 156), (165, 150), (185, 152), (182, 138),
           (172, 126), (160, 118), (153, 100), (152, 80), (158, 58), (170, 40), (188, 26), (206, 17)]
CROP = (16, 0, 400, 336)  # x0, y0, x1, y1


def main(src: str, out_dir: str) -> None:
    im = cv2.imread(src)
    poly = np.array(POLYGON, np.int32)
    m = np.zeros(im.shape[:2], np.uint8)
    cv2.fillPoly(m, [poly], 255)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    gc = np.full(m.shape, cv2.GC_BGD, np.uint8)
    gc[cv2.dilate(m, k) > 0] = cv2.GC_PR_BGD
    gc[m > 0] = cv2.GC_PR_FGD
    gc[cv2.erode(m, k) > 0] = cv2.GC_FGD
    bgd = np.zeros((1, 65), np.float64)
    fgd = np.zeros((1, 65), np.float64)
    cv2.grabCut(im, gc, None, bgd, fgd, 8, cv2.GC_INIT_WITH_MASK)
    seg = np.where((gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
    seg[320:] = np.maximum(seg[320:], m[320:])  # the body goes on below the crop: keep the polygon there
    n, lab, st, _ = cv2.connectedComponentsWithStats(seg)
    seg = np.where(lab == 1 + np.argmax(st[1:, cv2.CC_STAT_AREA]), 255, 0).astype(np.uint8)
    n, lab, st, _ = cv2.connectedComponentsWithStats(255 - seg)
    for i in range(1, n):
        if st[i, cv2.CC_STAT_AREA] < 2000:
            seg[lab == i] = 255
    alpha = cv2.GaussianBlur(seg.astype(np.float32) / 255.0, (0, 0), 0.8)
    x0, y0, x1, y1 = CROP
    cv2.imwrite(os.path.join(out_dir, "person.jpg"), im[y0:y1, x0:x1], [cv2.IMWRITE_JPEG_QUALITY, 92])
    a8 = np.clip(np.round(alpha[y0:y1, x0:x1] * 255), 0, 255).astype(np.uint8)
    cv2.imwrite(os.path.join(out_dir, "person_alpha.png"), a8, [cv2.IMWRITE_PNG_COMPRESSION, 9])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
