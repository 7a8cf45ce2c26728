import unittest

import app
from paracle_plugin import chat


class ChatTest(unittest.TestCase):
    def test_echoes_the_last_user_message(self):
        reply = chat({"model": "", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hello"},
        ]})
        self.assertEqual(reply["content"], "You said: hello")
        self.assertEqual(reply["finish_reason"], "stop")
        self.assertEqual(reply["model"], "echo-1")


if __name__ == "__main__":
    unittest.main()
