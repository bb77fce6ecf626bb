"""Reference for tests/data/media/test_face.c: converts images to 8-bit grayscale PGM and runs OpenCV's cascade detector.

usage: face_ref.py OUTDIR CASCADE_XML IMAGE...
  writes OUTDIR/img<i>.pgm (cv2.COLOR_BGR2GRAY), OUTDIR/boxes<i>.txt: one "x y w h" line per box of
  cv2.CascadeClassifier(CASCADE_XML).detectMultiScale(gray, scaleFactor=1.1, minNeighbors=3), and OUTDIR/raw<i>.txt:
  the same with minNeighbors=0, i.e. every window the cascade accepts, ungrouped
usage: face_ref.py --face OUTDIR IMAGE SIZE
  writes OUTDIR/face.pgm: the image's grayscale resized to SIZE x SIZE (a face to paste into synthetic frames)
"""
import sys

import cv2


def write_pgm(path, gray):
    h, w = gray.shape
    with open(path, "wb") as f:
        f.write(b"P5\n%d %d\n255\n" % (w, h))
        f.write(gray.tobytes())


def main():
    if sys.argv[1] == "--face":
        out, img, size = sys.argv[2], sys.argv[3], int(sys.argv[4])
        gray = cv2.cvtColor(cv2.imread(img), cv2.COLOR_BGR2GRAY)
        write_pgm(f"{out}/face.pgm", cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA))
        return
    out, xml = sys.argv[1], sys.argv[2]
    det = cv2.CascadeClassifier(xml)
    assert not det.empty(), xml
    for i, img in enumerate(sys.argv[3:]):
        gray = cv2.cvtColor(cv2.imread(img), cv2.COLOR_BGR2GRAY)
        write_pgm(f"{out}/img{i}.pgm", gray)
        for name, min_neighbors in (("boxes", 3), ("raw", 0)):
            boxes = det.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=min_neighbors)
            with open(f"{out}/{name}{i}.txt", "w") as f:
                for x, y, w, h in boxes:
                    f.write(f"{x} {y} {w} {h}\n")


if __name__ == "__main__":
    main()
