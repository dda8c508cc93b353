"""Scoring files with a trained checkpoint: `python -m iid.predict ckpt=PATH input=FILE_OR_FOLDER`.

media     which files a run scores, image reading, streaming video decoding (frames at equal
          intervals, as `prepare` samples them)
faces     face detection + 68 landmarks (dlib by default, the landmark-backend registry for
          others) and the alignment onto `prepare`'s canvas (iid.data.faces), face tracks
worker    decode + detect + align of one file as a stream of messages, run in worker processes
scoring   the checkpoint's model on batches of canvases: the eval transform and normalisation of
          evaluation, fake probability, the ADM's best artifact box after NMS, mapped to frame pixels
outputs   the JSON per file, the CSV summary, the contact sheet and the overlay video
run       the flow of a run: inputs, resume, the worker pool feeding the batched model, counts
"""
