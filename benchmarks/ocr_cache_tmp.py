import sys, json, hashlib, io, os
from pathlib import Path
os.environ.setdefault("OMP_THREAD_LIMIT","1")
ROOT=Path(__file__).resolve().parents[1]; sys.path.insert(0,str(ROOT))
import numpy as np
from pipeline.models import RasterPage, PageResult
from pipeline.config import ImageSettings, OcrSettings, LimitSettings
from pipeline.deskew import deskew_page
from pipeline.cleanup import cleanup_page
from pipeline.ocr import ocr_page
def ocr_image(img, page, dpi):
    arr=np.asarray(img.convert("RGB"))
    r=RasterPage(page=page,image=arr,dpi=dpi,sha256="")
    p=deskew_page(r,ImageSettings()); p=cleanup_page(p,ImageSettings())
    words,text,conf,_,_=ocr_page(p,OcrSettings(),LimitSettings(),text_pdf=False)
    h,w=p.color.shape[:2]
    return PageResult(page=page,width=w,height=h,dpi=p.dpi,text=text,words=words,mean_confidence=conf)
if __name__=="__main__":
    from samples.render import render_document
    from samples.specs import corpus_specs
    specs={s.number:s for s in corpus_specs()}
    for num in sys.argv[1:]:
        s=specs[num]
        pages=render_document(s,font="serif",dpi=200)
        out=[ocr_image(im,i+1,200).model_dump() for i,im in enumerate(pages)]
        Path(ROOT/"benchmarks/out"/(s.stem+".json")).write_text(json.dumps(out,ensure_ascii=False))
        print(num,len(out))

def real(path):
    from pipeline.load import probe, render_page
    data=Path(path).read_bytes(); info=probe(data,LimitSettings())
    out=[]
    for i in range(1,info.page_count+1):
        r=render_page(data,info,i,LimitSettings())
        p=deskew_page(r,ImageSettings()); p=cleanup_page(p,ImageSettings())
        words,text,conf,_,_=ocr_page(p,OcrSettings(),LimitSettings(),text_pdf=False)
        h,w=p.color.shape[:2]
        out.append(PageResult(page=i,width=w,height=h,dpi=p.dpi,text=text,words=words,mean_confidence=conf).model_dump())
    return out
