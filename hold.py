import socket, time
end = time.time() + 12
while time.time() < end:
    socks = []
    for i in range(8):
        s = socket.create_connection(("127.0.0.1", 19617)); socks.append(s)
    time.sleep(4.5)
    for s in socks: s.close()
