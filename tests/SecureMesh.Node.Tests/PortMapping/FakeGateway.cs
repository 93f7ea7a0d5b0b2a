using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using SecureMesh.Node.PortMapping;

namespace SecureMesh.Node.Tests.PortMapping;

/// <summary>A PCP/NAT-PMP gateway on 127.0.0.1 that answers each request with whatever the test's script returns.</summary>
internal sealed class FakeGateway : IDisposable
{
    private readonly UdpClient _udp = new(new IPEndPoint(IPAddress.Loopback, 0));
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public FakeGateway(Func<byte[], IEnumerable<byte[]>> script)
    {
        _loop = Task.Run(async () =>
        {
            try
            {
                while (true)
                {
                    var received = await _udp.ReceiveAsync(_stop.Token);
                    Requests.Enqueue(received.Buffer);
                    foreach (var reply in script(received.Buffer))
                    {
                        await _udp.SendAsync(reply, received.RemoteEndPoint, _stop.Token);
                    }
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
            }
        });
    }

    public IPEndPoint EndPoint => (IPEndPoint)_udp.Client.LocalEndPoint!;

    public ConcurrentQueue<byte[]> Requests { get; } = new();

    public static readonly PortMappingTimings Quick = new()
    {
        PcpInitial = TimeSpan.FromMilliseconds(300),
        PcpAttempts = 2,
        NatPmpInitial = TimeSpan.FromMilliseconds(100),
        NatPmpAttempts = 2,
    };

    public static bool IsPcp(byte[] request) => request.Length == 60 && request[0] == 2;

    public static uint Lifetime(byte[] pcpRequest) => BinaryPrimitives.ReadUInt32BigEndian(pcpRequest.AsSpan(4));

    /// <summary>A PCP MAP success for <paramref name="request"/>, with its fields overridable to make it wrong.</summary>
    public static byte[] PcpAnswer(byte[] request, IPAddress external, int externalPort, uint lifetime, int result = 0, byte? opcode = null, byte[]? nonce = null, int version = 2)
    {
        var r = new byte[60];
        r[0] = (byte)version;
        r[1] = opcode ?? (byte)(0x80 | PcpMessages.OpcodeMap);
        r[3] = (byte)result;
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(4), lifetime);
        BinaryPrimitives.WriteUInt32BigEndian(r.AsSpan(8), 1234);
        (nonce ?? request.AsSpan(24, 12).ToArray()).CopyTo(r, 24);
        r[36] = request[36];
        request.AsSpan(40, 2).CopyTo(r.AsSpan(40));
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(42), (ushort)externalPort);
        external.MapToIPv6().GetAddressBytes().CopyTo(r, 44);
        return r;
    }

    /// <summary>NAT-PMP answers: the external address, and a TCP mapping echoing the request's internal port.</summary>
    public static byte[] NatPmpAnswer(byte[] request, IPAddress external, int externalPort, uint lifetime)
    {
        if (request.Length == 2 && request[1] == 0)
        {
            var a = new byte[12];
            a[1] = 128;
            BinaryPrimitives.WriteUInt32BigEndian(a.AsSpan(4), 1234);
            external.GetAddressBytes().CopyTo(a, 8);
            return a;
        }
        var m = new byte[16];
        m[1] = 128 + 2;
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(4), 1234);
        request.AsSpan(4, 2).CopyTo(m.AsSpan(8));
        BinaryPrimitives.WriteUInt16BigEndian(m.AsSpan(10), (ushort)externalPort);
        BinaryPrimitives.WriteUInt32BigEndian(m.AsSpan(12), lifetime);
        return m;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _udp.Dispose();
        _loop.Wait(TimeSpan.FromSeconds(5));
        _stop.Dispose();
    }
}
