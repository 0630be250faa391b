"""
The examples of C{docs/extending.md}, one small complete module each:

  - L{examples.extending.dictbackend}: a read-only backend serving entries
    from a Python dict;
  - L{examples.extending.protect}: an operation plugin that refuses to delete
    protected entries, and counts the outcomes of deletes;
  - L{examples.extending.authzid}: a control, the Authorization Identity
    Request and Response controls of RFC 3829;
  - L{examples.extending.clock}: an extended operation that answers the
    server's current time.

Configuration names them as C{"examples.extending.<module>:<Factory>"};
C{tests/test_extending_examples.py} runs every one of them.
"""
