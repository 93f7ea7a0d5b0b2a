using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Node.Network;
using SecureMesh.Node.PortMapping;

namespace SecureMesh.Node.Tests.PortMapping;

/// <summary>Issue 17, item 4: PCP with NAT-PMP fallback against a fake gateway that lies, truncates and refuses.</summary>
public sealed class PortMappingClientTests
{
    private static readonly IPAddress External = IPAddress.Parse("198.51.100.7");

    private static PortMappingClient Client(FakeGateway gateway) =>
        new(gateway.EndPoint, FakeGateway.Quick, TimeProvider.System, NullLogger.Instance);

    [Fact]
    public async Task Pcp_map_is_granted_and_deleted_with_the_same_nonce()
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r) ? [FakeGateway.PcpAnswer(r, External, 40001, FakeGateway.Lifetime(r))] : []);
        var client = Client(gateway);
        var outcome = await client.MapAsync(4747, 4747, TimeSpan.FromSeconds(600), CancellationToken.None);
        Assert.NotNull(outcome.Granted);
        Assert.Equal(new IPEndPoint(External, 40001), outcome.Granted.External);
        Assert.Equal(TimeSpan.FromSeconds(600), outcome.Granted.Lifetime);
        Assert.Equal("PCP", client.Protocol);

        var request = Assert.Single(gateway.Requests);
        Assert.Equal(2, request[0]);
        Assert.Equal(PcpMessages.OpcodeMap, request[1]);
        Assert.Equal(600u, FakeGateway.Lifetime(request));
        Assert.Equal(IPAddress.Loopback.MapToIPv6(), new IPAddress(request.AsSpan(8, 16)));
        Assert.Equal(6, request[36]);
        Assert.Equal(4747, BinaryPrimitives.ReadUInt16BigEndian(request.AsSpan(40)));

        Assert.True(await client.DeleteAsync(4747, TimeSpan.FromSeconds(2), CancellationToken.None));
        var delete = gateway.Requests.Last();
        Assert.Equal(0u, FakeGateway.Lifetime(delete));
        Assert.Equal(request.AsSpan(24, 12).ToArray(), delete.AsSpan(24, 12).ToArray());
    }

    [Fact]
    public async Task Garbage_truncated_oversized_wrong_nonce_and_wrong_opcode_answers_are_ignored_until_a_good_one()
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r)
            ?
            [
                [0xde, 0xad, 0xbe, 0xef, 1, 2, 3],
                FakeGateway.PcpAnswer(r, External, 1, 600)[..40],
                new byte[1500],
                FakeGateway.PcpAnswer(r, External, 2, 600, nonce: new byte[12]),
                FakeGateway.PcpAnswer(r, External, 3, 600, opcode: 0x82),
                FakeGateway.PcpAnswer(r, External, 4, 600, opcode: PcpMessages.OpcodeMap),
                FakeGateway.PcpAnswer(r, External, 5, 600, version: 3),
                FakeGateway.PcpAnswer(r, External, 40002, 600),
            ]
            : []);
        var outcome = await Client(gateway).MapAsync(4747, 4747, TimeSpan.FromSeconds(600), CancellationToken.None);
        Assert.Equal(40002, outcome.Granted?.External.Port);
    }

    [Fact]
    public async Task Only_wrong_nonces_give_no_mapping_and_no_crash()
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r) ? [FakeGateway.PcpAnswer(r, External, 40003, 600, nonce: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])] : []);
        var outcome = await Client(gateway).MapAsync(4747, 4747, TimeSpan.FromSeconds(600), CancellationToken.None);
        Assert.Null(outcome.Granted);
        Assert.True(outcome.NoGateway, outcome.Failure);
        // Bounded: two PCP sends, then two NAT-PMP address requests, nothing more.
        Assert.Equal(2, gateway.Requests.Count(FakeGateway.IsPcp));
        Assert.Equal(2, gateway.Requests.Count(r => r.Length == 2));
    }

    [Theory]
    [InlineData(2, "not authorized")]
    [InlineData(8, "no resources")]
    [InlineData(12, "address mismatch")]
    [InlineData(77, "unknown result code 77")]
    public async Task A_pcp_error_code_is_a_clear_failure(int code, string meaning)
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r) ? [FakeGateway.PcpAnswer(r, IPAddress.Any, 0, 0, result: code)] : []);
        var outcome = await Client(gateway).MapAsync(4747, 4747, TimeSpan.FromSeconds(600), CancellationToken.None);
        Assert.Null(outcome.Granted);
        Assert.Contains(meaning, outcome.Failure, StringComparison.Ordinal);
        Assert.False(outcome.NoGateway);
    }

    [Fact]
    public async Task A_nat_pmp_only_gateway_gets_nat_pmp_and_a_delete_with_lifetime_0()
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r)
            // RFC 6887 section 9: a NAT-PMP server answers version 2 with version 0, "unsupported version".
            ? [[0, 129, 0, 1, 0, 0, 0, 9]]
            : [FakeGateway.NatPmpAnswer(r, External, 40004, r.Length == 12 ? BinaryPrimitives.ReadUInt32BigEndian(r.AsSpan(8)) : 0)]);
        var client = Client(gateway);
        var outcome = await client.MapAsync(4747, 4747, TimeSpan.FromSeconds(7200), CancellationToken.None);
        Assert.Equal(new IPEndPoint(External, 40004), outcome.Granted?.External);
        Assert.Equal("NAT-PMP", client.Protocol);
        Assert.True(await client.DeleteAsync(4747, TimeSpan.FromSeconds(2), CancellationToken.None));
        var delete = gateway.Requests.Last();
        Assert.Equal(12, delete.Length);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(delete.AsSpan(8)));
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(delete.AsSpan(6)));
    }

    [Theory]
    [InlineData(new byte[] { 0, 130, 0, 3, 0, 0, 0, 1 }, "network failure")]
    [InlineData(new byte[] { 0, 130, 0, 2, 0, 0, 0, 1 }, "not authorized or refused")]
    public async Task A_nat_pmp_refusal_is_a_clear_failure(byte[] answer, string meaning)
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r) ? [[0, 129, 0, 1, 0, 0, 0, 9]] : r.Length == 2 ? [FakeGateway.NatPmpAnswer(r, External, 0, 0)] : [answer]);
        var outcome = await Client(gateway).MapAsync(4747, 4747, TimeSpan.FromSeconds(7200), CancellationToken.None);
        Assert.Null(outcome.Granted);
        Assert.Contains(meaning, outcome.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_gateway_listening_is_a_quiet_no_gateway()
    {
        // A port nothing listens on: ICMP port unreachable ends each exchange at once.
        int port;
        using (var probe = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0)))
        {
            port = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        }
        var client = new PortMappingClient(new IPEndPoint(IPAddress.Loopback, port), new PortMappingTimings(), TimeProvider.System, NullLogger.Instance);
        var outcome = await client.MapAsync(4747, 4747, TimeSpan.FromSeconds(600), CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Null(outcome.Granted);
        Assert.True(outcome.NoGateway, outcome.Failure);
    }

    [Fact]
    public void Pcp_parser_checks_every_field()
    {
        var nonce = new byte[12];
        nonce[0] = 7;
        var request = PcpMessages.MapRequest(nonce, IPAddress.Parse("192.168.1.20"), 4747, 4747, null, 600);
        var good = FakeGateway.PcpAnswer(request, External, 4747, 600);
        Assert.NotNull(PcpMessages.ParseMapResponse(good, nonce, 4747).Granted);
        Assert.Null(PcpMessages.ParseMapResponse(good, nonce, 4748).Granted);
        Assert.Null(PcpMessages.ParseMapResponse(good.AsSpan(0, 59), nonce, 4747).Granted);
        Assert.Null(PcpMessages.ParseMapResponse([.. good, 0, 0], nonce, 4747).Granted);
        Assert.Null(PcpMessages.ParseMapResponse(request, nonce, 4747).Granted);
        Assert.Null(PcpMessages.ParseMapResponse([], nonce, 4747).Granted);
        var udp = (byte[])good.Clone();
        udp[36] = 17;
        Assert.Null(PcpMessages.ParseMapResponse(udp, nonce, 4747).Granted);
        // A success that names no external address is not a mapping.
        Assert.Null(PcpMessages.ParseMapResponse(FakeGateway.PcpAnswer(request, IPAddress.Any, 4747, 600), nonce, 4747).Granted);
    }

    [Fact]
    public void Nat_pmp_parser_checks_sizes_and_opcodes()
    {
        var request = NatPmpMessages.MapRequest(4747, 4747, 7200);
        var good = FakeGateway.NatPmpAnswer(request, External, 4747, 7200);
        Assert.NotNull(NatPmpMessages.ParseMapResponse(good, 4747, External).Granted);
        Assert.Null(NatPmpMessages.ParseMapResponse(good.AsSpan(0, 15), 4747, External).Granted);
        Assert.Null(NatPmpMessages.ParseMapResponse(good, 4748, External).Granted);
        var udp = (byte[])good.Clone();
        udp[1] = 129;
        Assert.Null(NatPmpMessages.ParseMapResponse(udp, 4747, External).Granted);
        Assert.Null(NatPmpMessages.ParseExternalAddress([0, 128, 0, 0, 0, 0]).Address);
        Assert.Equal(External, NatPmpMessages.ParseExternalAddress(FakeGateway.NatPmpAnswer([0, 0], External, 0, 0)).Address);
    }

    [Fact]
    public void The_default_gateway_is_read_from_the_routing_table()
    {
        const string table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
            + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
            + "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
            + "wlan0\t00000000\t0100000A\t0003\t0\t0\t50\t00000000\t0\t0\t0\n"
            + "down0\t00000000\t0200000A\t0002\t0\t0\t1\t00000000\t0\t0\t0\n"
            + "garbage line\n";
        Assert.Equal(IPAddress.Parse("10.0.0.1"), DefaultGateway.Parse(table));
        Assert.Null(DefaultGateway.Parse("Iface\tDestination\n" + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"));
        Assert.Null(DefaultGateway.Find("/nonexistent/route"));
    }

    [Fact]
    public async Task The_service_advertises_renews_at_half_life_and_deletes_on_stop()
    {
        using var gateway = new FakeGateway(r => FakeGateway.IsPcp(r) ? [FakeGateway.PcpAnswer(r, External, 40005, FakeGateway.Lifetime(r) == 0 ? 0u : 4u)] : []);
        var reach = new NodeReach();
        var service = new PortMappingService(reach, 4747, new PortMappingOptions { Gateway = gateway.EndPoint, Timings = FakeGateway.Quick }, NullLogger.Instance);
        service.Start();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        // Granted 4 s: renewed after 2 s, so a second MAP with a lifetime arrives.
        while (gateway.Requests.Count(r => FakeGateway.IsPcp(r) && FakeGateway.Lifetime(r) > 0) < 2)
        {
            Assert.True(DateTime.UtcNow < deadline, "no renewal");
            await Task.Delay(50);
        }
        var advertised = Assert.Single(reach.Advertised);
        Assert.Equal(new IPEndPoint(External, 40005), advertised.EndPoint);
        Assert.Equal("mapped", advertised.Source);
        Assert.Contains("by PCP", reach.PortMapping, StringComparison.Ordinal);

        await service.DisposeAsync();
        Assert.Equal(0u, FakeGateway.Lifetime(gateway.Requests.Last()));
        Assert.Empty(reach.Advertised);
        Assert.Equal("off", reach.PortMapping);
    }
}
