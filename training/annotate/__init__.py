"""One review round with Label Studio (``khabar annotate``): ``export`` writes the articles the models
are least sure of as Label Studio tasks with the models' labels as pre-annotations (``select`` picks
them, ``label_studio`` shapes tasks and labeling configs); ``reviews`` reads Label Studio's JSON
export back (majority vote) into the annotation file ``build-dataset`` reads. khabar only exchanges
files with Label Studio: the server and its SDK live in their own environment (``make setup``).
"""
