import unittest

import app
from paracle_plugin import call_tool


class GreetTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(call_tool("greet", {"name": "Ada"}), {"greeting": "Hello, Ada!"})


if __name__ == "__main__":
    unittest.main()
