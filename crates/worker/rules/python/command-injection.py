import asyncio
import os
import subprocess
from subprocess import Popen


def convert(path, out, host):
    # ruleid: picket.python.command-injection
    os.system("convert " + path + " " + out)
    # ruleid: picket.python.command-injection
    os.popen(f"ping -c 1 {host}").read()
    # ruleid: picket.python.command-injection
    subprocess.run(f"tar xf {path}", shell=True, check=True)
    # ruleid: picket.python.command-injection
    subprocess.check_output("git log " + out, cwd="/tmp", shell=True)
    # ruleid: picket.python.command-injection
    Popen("ls %s" % path, shell=True)
    # ruleid: picket.python.command-injection
    subprocess.getoutput("du -sh " + path)
    # ok: picket.python.command-injection
    subprocess.run(["convert", path, out], check=True)
    # ok: picket.python.command-injection
    subprocess.run(f"tar xf {path}", shell=False)
    # ok: picket.python.command-injection
    subprocess.run("make clean", shell=True)
    cmd = "uptime"
    # ok: picket.python.command-injection
    os.system(cmd)
    # ok: picket.python.command-injection
    os.system("reset")


async def run(name):
    # ruleid: picket.python.command-injection
    await asyncio.create_subprocess_shell("echo " + name)
    # ok: picket.python.command-injection
    await asyncio.create_subprocess_exec("echo", name)
