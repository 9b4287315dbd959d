"""The node: updog's update flow on a real GPT disk, and the standard TUF client (``tuf-client``).

It never imports publish, audit, signing or boto3.
"""
