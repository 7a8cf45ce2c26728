import unittest

import app
import paracle_plugin


class StoreTest(unittest.TestCase):
    def test_finds_what_it_keeps(self):
        store = app.Store()
        store.put("notes", "colour", "the sky is blue")
        store.put("other", "colour", "elsewhere")
        self.assertEqual(store.get("notes", "colour"), "the sky is blue")
        self.assertEqual(store.keys("notes", ""), ["colour"])
        hits = paracle_plugin.search(store, "notes", "sky", 5)
        self.assertEqual([h["key"] for h in hits], ["colour"])
        self.assertTrue(store.delete("notes", "colour"))


if __name__ == "__main__":
    unittest.main()
