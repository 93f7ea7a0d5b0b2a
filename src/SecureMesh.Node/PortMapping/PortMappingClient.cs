using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace SecureMesh.Node.PortMapping;

/// <summary>How patient the client is with a gateway (defaults from the RFCs, with the retries bounded).</summary>
internal sealed record PortMappingTimings
{
    /// <summary>PCP's initial retransmission time (RFC 6887 section 8.1.1: IRT = 3 s), doubled per retry.</summary>
    public TimeSpan PcpInitial { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>PCP sends; the RFC retries without bound, a background client need not.</summary>
    public int PcpAttempts { get; init; } = 2;

    /// <summary>NAT-PMP's first wait (RFC 6886 section 3.1: 250 ms), doubled per retry.</summary>
    public TimeSpan NatPmpInitial { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>NAT-PMP sends (the RFC allows 9; 4 bound the wait to under 4 s).</summary>
    public int NatPmpAttempts { get; init; } = 4;
}

/// <summary>Parses one datagram from the gateway.</summary>
internal delegate MappingReply ReplyParser(ReadOnlySpan<byte> datagram);

/// <summary>The outcome of one mapping attempt: the grant, or why there is none.</summary>
internal sealed record MappingOutcome(GrantedMapping? Granted, string? Failure, bool NoGateway = false);

/// <summary>
/// Asks a gateway for a TCP port mapping: PCP MAP first, NAT-PMP when the gateway does not speak PCP. Every answer is
/// parsed strictly (size, version, opcode, nonce, port); a datagram that fails is logged and ignored, and the client keeps
/// waiting for a good one until the attempt's timeout. A gateway that answers nothing costs the bounded retries only.
/// </summary>
internal sealed class PortMappingClient
{
    private readonly IPEndPoint _gateway;
    private readonly PortMappingTimings _timings;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly byte[] _nonce = RandomNumberGenerator.GetBytes(12);

    public PortMappingClient(IPEndPoint gateway, PortMappingTimings timings, TimeProvider time, ILogger logger)
    {
        _gateway = gateway;
        _timings = timings;
        _time = time;
        _logger = logger;
    }

    /// <summary>The protocol of the last grant ("PCP" or "NAT-PMP"), which renewals and the deletion keep to.</summary>
    public string? Protocol { get; private set; }

    /// <summary>Requests (or renews) a mapping of <paramref name="internalPort"/> for <paramref name="lifetime"/>.</summary>
    public async Task<MappingOutcome> MapAsync(int internalPort, int suggestedExternalPort, TimeSpan lifetime, CancellationToken cancellationToken)
    {
        var seconds = (uint)Math.Clamp(lifetime.TotalSeconds, 1, uint.MaxValue);
        using var socket = Connect(out var local);
        var pcpFailure = "no answer to PCP";
        if (Protocol is null or "PCP")
        {
            var request = PcpMessages.MapRequest(_nonce, local, internalPort, suggestedExternalPort, null, seconds);
            var reply = await ExchangeAsync(socket, request, d => PcpMessages.ParseMapResponse(d, _nonce, internalPort),
                _timings.PcpInitial, _timings.PcpAttempts, cancellationToken).ConfigureAwait(false);
            if (reply is { Granted: { } granted })
            {
                Protocol = "PCP";
                return new MappingOutcome(granted, null);
            }
            if (reply is { } refused && !refused.UnsupportedVersion)
            {
                return new MappingOutcome(null, $"the gateway refused the PCP mapping: {refused.Error} (result {refused.ResultCode})");
            }
            pcpFailure = reply is null ? "no answer to PCP" : "the gateway does not speak PCP";
        }
        var external = await ExchangeAsync(socket, NatPmpMessages.ExternalAddressRequest(), d => ToReply(NatPmpMessages.ParseExternalAddress(d)),
            _timings.NatPmpInitial, _timings.NatPmpAttempts, cancellationToken).ConfigureAwait(false);
        if (external is null)
        {
            return new MappingOutcome(null, $"{pcpFailure}, none to NAT-PMP: no port-mapping gateway at {_gateway.Address}", NoGateway: true);
        }
        if (external.Value.Granted is not { } address)
        {
            return new MappingOutcome(null, $"the gateway refused NAT-PMP: {external.Value.Error} (result {external.Value.ResultCode})");
        }
        var map = await ExchangeAsync(socket, NatPmpMessages.MapRequest(internalPort, suggestedExternalPort, seconds),
            d => NatPmpMessages.ParseMapResponse(d, internalPort, address.External.Address), _timings.NatPmpInitial, _timings.NatPmpAttempts, cancellationToken).ConfigureAwait(false);
        if (map is { Granted: { } natGrant })
        {
            Protocol = "NAT-PMP";
            return new MappingOutcome(natGrant, null);
        }
        return new MappingOutcome(null, map is null ? "no answer to the NAT-PMP mapping request" : $"the gateway refused the NAT-PMP mapping: {map.Value.Error} (result {map.Value.ResultCode})");
    }

    /// <summary>Deletes the mapping (lifetime 0) with one short attempt: a stopping node does not wait on its router.</summary>
    public async Task<bool> DeleteAsync(int internalPort, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var socket = Connect(out var local);
        MappingReply? reply = Protocol switch
        {
            "PCP" => await ExchangeAsync(socket, PcpMessages.MapRequest(_nonce, local, internalPort, 0, null, 0),
                d => PcpMessages.ParseMapResponse(d, _nonce, internalPort), timeout, 1, cancellationToken).ConfigureAwait(false),
            "NAT-PMP" => await ExchangeAsync(socket, NatPmpMessages.MapRequest(internalPort, 0, 0),
                d => NatPmpMessages.ParseMapResponse(d, internalPort, IPAddress.Any), timeout, 1, cancellationToken).ConfigureAwait(false),
            _ => null,
        };
        return reply is { ResultCode: 0 };
    }

    private static MappingReply ToReply((IPAddress? Address, int ResultCode, string? Error) parsed) => parsed.Address is { } address
        ? new MappingReply(new GrantedMapping(new IPEndPoint(address, 0), 0, TimeSpan.Zero, "NAT-PMP"), 0, null, false)
        : parsed.ResultCode > 0 ? new MappingReply(null, parsed.ResultCode, parsed.Error, parsed.ResultCode == 1) : MappingReply.Drop(parsed.Error!);

    private Socket Connect(out IPAddress local)
    {
        var socket = new Socket(_gateway.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            // Connected: the kernel passes on only datagrams from the gateway's address and port (RFC 6886 section 3.1
            // asks the client to ignore any other), and an ICMP "port unreachable" ends the wait at once.
            socket.Connect(_gateway);
            local = ((IPEndPoint)socket.LocalEndPoint!).Address;
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    /// <summary>Sends <paramref name="request"/> up to <paramref name="attempts"/> times, doubling the wait; the first answer that parses (grant or refusal) wins.</summary>
    private async Task<MappingReply?> ExchangeAsync(Socket socket, byte[] request, ReplyParser parse, TimeSpan initial, int attempts, CancellationToken cancellationToken)
    {
        var buffer = new byte[PcpMessages.MaxLength + 4];
        var wait = initial;
        for (var attempt = 0; attempt < attempts; attempt++, wait *= 2)
        {
            try
            {
                await socket.SendAsync(request, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException e)
            {
                PortMappingLog.GatewayUnreachable(_logger, _gateway.ToString(), e.SocketErrorCode.ToString());
                return null;
            }
            using var timeout = new CancellationTokenSource(wait, _time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, cancellationToken);
            try
            {
                while (true)
                {
                    var n = await socket.ReceiveAsync(buffer, SocketFlags.None, linked.Token).ConfigureAwait(false);
                    var reply = n > PcpMessages.MaxLength ? MappingReply.Drop($"{n} bytes, longer than any answer") : parse(buffer.AsSpan(0, n));
                    if (reply.Granted is not null || reply.ResultCode > 0)
                    {
                        return reply;
                    }
                    PortMappingLog.Dropped(_logger, _gateway.ToString(), reply.Error ?? "unusable");
                }
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // This attempt timed out: send again, waiting twice as long.
            }
            catch (SocketException e) when (e.SocketErrorCode is SocketError.ConnectionRefused or SocketError.ConnectionReset or SocketError.HostUnreachable or SocketError.NetworkUnreachable)
            {
                // ICMP: nothing listens there. Another attempt would get the same.
                PortMappingLog.GatewayUnreachable(_logger, _gateway.ToString(), e.SocketErrorCode.ToString());
                return null;
            }
        }
        return null;
    }
}
