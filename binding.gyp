{
  "targets": [
    {
      "target_name": "softwire",
      "sources": ["src/native/softwire.c"],
      "defines": ["NAPI_VERSION=8", "_GNU_SOURCE"],
      "cflags_c": ["-std=gnu11", "-Wall", "-Wextra"]
    }
  ]
}
