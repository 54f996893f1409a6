"""The loop's sock_* coroutines on simulated sockets (emulator/sockcalls.py)."""

import asyncio

from emulator.loop import VirtualLoop


def test_the_sock_coroutines_work_on_simulated_sockets():
    """sock_accept, sock_recv and sock_sendall on the sockets of a server and a connection."""

    async def main():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, "127.0.0.1", 0, start_serving=False)
        listener = server.sockets[0]
        accepted = loop.create_task(loop.sock_accept(listener._sock))
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        conn, address = await accepted
        await loop.sock_sendall(conn, b"from the server")
        data = await reader.readexactly(15)
        writer.write(b"back")
        return data, await loop.sock_recv(conn, 100), address == writer.get_extra_info("sockname")

    loop = VirtualLoop()
    assert loop.run_until_complete(main()) == (b"from the server", b"back", True)
