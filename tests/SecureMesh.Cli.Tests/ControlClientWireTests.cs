using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using SecureMesh.Core;
using SecureMesh.Node.Control;

namespace SecureMesh.Cli.Tests;

/// <summary>
/// What <see cref="ControlClient"/> puts on the control socket and how it reads the answers, byte for byte, against a
/// stand-in server that records each request (the node's side is pinned in SecureMesh.Node.Tests' ControlWireFormatTests).
/// </summary>
public sealed class ControlClientWireTests : IAsyncLifetime
{
    private const string Peer = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";
    private readonly string _home = Directory.CreateTempSubdirectory("securemesh-client-wire-").FullName;
    private readonly List<(string Request, string? ContentType, string Body)> _seen = [];
    private WebApplication? _server;
    private string _answer = "{}";
    private int _status = StatusCodes.Status200OK;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.ListenUnixSocket(NodeControl.SocketPathFor(_home)));
        _server = builder.Build();
        _server.Run(async context =>
        {
            using var reader = new StreamReader(context.Request.Body, Encoding.UTF8);
            _seen.Add(($"{context.Request.Method} {context.Request.Path}{context.Request.QueryString}", context.Request.ContentType, await reader.ReadToEndAsync()));
            context.Response.StatusCode = _status;
            context.Response.ContentType = "application/json; charset=utf-8";
            await context.Response.WriteAsync(_answer);
        });
        await _server.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.DisposeAsync();
        }
        Directory.Delete(_home, recursive: true);
    }

    [Fact]
    public async Task Request_bodies_are_written_as_pinned()
    {
        using var client = new ControlClient(_home, TimeSpan.FromSeconds(30));
        var ct = CancellationToken.None;
        _answer = $$"""{"peerId":"{{Peer}}","fingerprint":"AB","changed":true}""";
        await client.BlockPeerAsync(Peer, "Zoë's <spam>", ct);
        await client.RenamePeerAsync(Peer, "bob & co", ct);
        await client.TrustPeerAsync(Peer, ct);
        _answer = """{"group":"friends","changed":1}""";
        await client.AddGroupMembersAsync("friends", [Peer], ct);
        _answer = """{"key":"discovery","value":"on","applied":"now","note":null}""";
        await client.SetConfigAsync("discovery", "on", ct);
        _status = StatusCodes.Status204NoContent;
        _answer = "";
        await client.UnblockAddressAsync("10.0.0.0/8", ct);

        Assert.Equal(
        [
            ($"POST /v1/peers/{Peer}/block", "application/json; charset=utf-8", """{"value":null,"reason":"Zo\u00EB\u0027s \u003Cspam\u003E"}"""),
            ($"POST /v1/peers/{Peer}/rename", "application/json; charset=utf-8", """{"name":"bob \u0026 co"}"""),
            ($"POST /v1/peers/{Peer}/trust", null, ""),
            ("POST /v1/groups/friends/members", "application/json; charset=utf-8", $$"""{"peerIds":["{{Peer}}"]}"""),
            ("PUT /v1/config/discovery", "application/json; charset=utf-8", """{"value":"on"}"""),
            ("DELETE /v1/blocklist/addr?cidr=10.0.0.0%2F8", null, ""),
        ], _seen);
    }

    [Fact]
    public async Task Answers_in_the_servers_encoding_are_read_and_errors_keep_their_kind()
    {
        using var client = new ControlClient(_home, TimeSpan.FromSeconds(30));
        var ct = CancellationToken.None;
        _answer = $$"""[{"peerId":"{{Peer}}","name":"Zoë's <dir> & \"q\"","state":"trusted","addresses":[],"fingerprint":"AB","firstSeen":"2026-12-04T01:02:03.456+00:00","lastSeen":null,"blockReason":null,"connected":true,"refusingUs":false,"refusedAt":null}]""";
        var peer = Assert.Single(await client.ListPeersAsync("trusted", ct));
        Assert.Equal("Zoë's <dir> & \"q\"", peer.Name);
        Assert.Equal(new DateTimeOffset(2026, 12, 4, 1, 2, 3, 456, TimeSpan.Zero), peer.FirstSeen);
        Assert.True(peer.Connected);
        Assert.Equal("GET /v1/peers?state=trusted", _seen[^1].Request);

        _status = StatusCodes.Status409Conflict;
        _answer = """{"error":"already \u0027known\u0027","kind":"conflict"}""";
        var e = await Assert.ThrowsAsync<SecureMeshException>(() => client.CreateGroupAsync("friends", ct));
        Assert.Equal(SecureMeshErrorKind.Conflict, e.Kind);
        Assert.Equal("already 'known'", e.Message);
        Assert.Equal(("POST /v1/groups", "application/json; charset=utf-8", """{"name":"friends"}"""), _seen[^1]);
    }
}
