"""Reading what the gateway wrote: :mod:`reader` decodes the Avro records of its topics (tests,
``gateway tail``, the benchmark), :mod:`book_rebuilder` rebuilds an order book from them."""
