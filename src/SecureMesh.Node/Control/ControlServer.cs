using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using SecureMesh.Core;
using SecureMesh.Node.Discovery;
using SecureMesh.Storage;

namespace SecureMesh.Node.Control;

/// <summary>How the control server runs.</summary>
internal sealed class ControlServerOptions
{
    /// <summary>The data directory; the socket is <c>&lt;home&gt;/control.sock</c>.</summary>
    public required string Home { get; init; }

    /// <summary>Where the server logs (refused connections, failures).</summary>
    public ILoggerFactory LoggerFactory { get; init; } = NullLoggerFactory.Instance;

    /// <summary>The node's LAN discovery, so <c>config set discovery</c> applies at once.</summary>
    public DiscoveryService? Discovery { get; init; }

    /// <summary>Peers seen by beacon.</summary>
    public DiscoveredPeers? Discovered { get; init; }

    /// <summary>The transfer engine; when given, shares, search, downloads and quarantine are served too.</summary>
    public Transfer.TransferService? Transfer { get; init; }

    /// <summary>
    /// Extra endpoint groups (transfers, quarantine…), each mapped under <c>/v1</c>. They can take
    /// <see cref="MeshNode"/>, <see cref="SecureMeshDatabase"/> and <see cref="NodeControlService"/> from the services.
    /// </summary>
    public IReadOnlyList<Action<IEndpointRouteBuilder>> EndpointGroups { get; init; } = [];
}

/// <summary>
/// The control API: HTTP+JSON on the Unix socket <c>&lt;home&gt;/control.sock</c> (mode 0600, no TCP listener), served to
/// this user only: the kernel's <c>SO_PEERCRED</c> of every connection must match our effective uid.
/// The caller must hold the <see cref="NodeLock"/> of the home: a socket file found at start is then stale and is removed.
/// The socket is bound and listening from the start; the web host behind it (ASP.NET Core: Kestrel, routing, the
/// endpoints) is built and started when the owner first connects, and serves that connection and every later one. A node
/// nobody asks anything (most of a headless <c>run</c>'s life) so never loads it: about 15 MB less resident memory
/// (src/SecureMesh.Node/README.md, idle memory). Connections from other users are refused before anything is loaded.
/// </summary>
internal sealed class ControlServer : IAsyncDisposable
{
    /// <summary>The socket's file name in the data directory.</summary>
    public const string FileName = "control.sock";

    private const UnixFileMode GroupOrOther =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    /// <summary>Kestrel's own default backlog.</summary>
    private const int Backlog = 512;

    private readonly Socket _listener;
    private readonly ILogger _logger;
    private readonly uint _owner;
    private readonly CancellationTokenSource _stop = new();
    private Task _serving = Task.CompletedTask;
    private WebApplication? _app;
    private int _refused;
    private int _disposed;

    private ControlServer(Socket listener, string socketPath, NodeControlService service, ILogger logger)
    {
        _listener = listener;
        _logger = logger;
        _owner = PeerCredentials.EffectiveUid();
        SocketPath = socketPath;
        Service = service;
    }

    /// <summary>The socket path.</summary>
    public string SocketPath { get; }

    /// <summary>The operations behind the endpoints.</summary>
    public NodeControlService Service { get; }

    /// <summary>Connections refused because they came from another user.</summary>
    public int RefusedConnections => Volatile.Read(ref _refused);

    /// <summary>Whether the web host has been started (by the owner's first connection).</summary>
    internal bool WebHostStarted => Volatile.Read(ref _app) is not null;

    /// <summary>The endpoints served, once the web host has started (empty before).</summary>
    internal IEnumerable<Endpoint> Endpoints => Volatile.Read(ref _app) is IEndpointRouteBuilder app ? app.DataSources.SelectMany(d => d.Endpoints) : [];

    /// <summary>Where the control socket of <paramref name="home"/> lives.</summary>
    public static string SocketPathFor(string home) => Path.Combine(Path.GetFullPath(home), FileName);

    /// <summary>The JSON conventions of the API (camelCase, the source-generated contract only); the client uses the same.</summary>
    public static JsonSerializerOptions Json { get; } = CreateJsonOptions();

    /// <summary>Error bodies are written with <see cref="Json"/> (the default encoder), not the HTTP settings.</summary>
    private static JsonTypeInfo<ErrorInfo> ErrorJson { get; } = (JsonTypeInfo<ErrorInfo>)Json.GetTypeInfo(typeof(ErrorInfo));

    /// <summary>Binds the socket and starts serving (the web host starts at the owner's first connection).</summary>
    public static Task<ControlServer> StartAsync(MeshNode node, SecureMeshDatabase db, ControlServerOptions options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(db);
        ArgumentNullException.ThrowIfNull(options);
        cancellationToken.ThrowIfCancellationRequested();
        var home = Path.GetFullPath(options.Home);
        var socketPath = SocketPathFor(home);
        var logger = options.LoggerFactory.CreateLogger("SecureMesh.Control");

        // The socket is created with the umask's mode and only then chmod-ed to 0600; the 0700 data directory is what
        // keeps other users away in between, so refuse to bind in a directory they can enter.
        if (!OperatingSystem.IsWindows() && (File.GetUnixFileMode(home) & GroupOrOther) != 0)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"the data directory {home} is open to other users; 'chmod 700 {home}' before running the node");
        }
        // sockaddr_un holds 107 bytes of path plus the terminator.
        if (System.Text.Encoding.UTF8.GetByteCount(socketPath) > 107)
        {
            throw new SecureMeshException(SecureMeshErrorKind.Storage,
                $"the control socket path {socketPath} is longer than a Unix socket allows (107 bytes); use a shorter --home");
        }
        if (File.Exists(socketPath) || Directory.Exists(socketPath))
        {
            File.Delete(socketPath);
            ControlLog.RemovedStale(logger, socketPath);
        }

        var service = new NodeControlService(home, db, node, options.Discovery, options.Discovered);
        var groups = new GroupControlService(db, options.Transfer is { } access ? access.RefreshAccess : null);
        TransferControlService? transferControl = null;
        if (options.Transfer is { } transfer)
        {
            transferControl = new TransferControlService(transfer);
            service.Transfers = transferControl;
        }

        var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            listener.Bind(new UnixDomainSocketEndPoint(socketPath));
            if (!OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(socketPath, OwnerOnly.Files);
            }
            listener.Listen(Backlog);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new SecureMeshException(SecureMeshErrorKind.Storage, $"cannot listen on the control socket {socketPath}: {e.Message}", e);
        }
        catch
        {
            listener.Dispose();
            throw;
        }

        var server = new ControlServer(listener, socketPath, service, logger);
        server._serving = server.ServeAsync(transport => BuildApp(home, node, db, service, groups, transferControl, options, logger, transport));
        ControlLog.Listening(logger, socketPath);
        return Task.FromResult(server);
    }

    /// <summary>Waits for the owner's first connection, then starts the web host with it (and the socket) as its transport.</summary>
    private async Task ServeAsync(Func<IConnectionListenerFactory, WebApplication> build)
    {
        Socket first;
        while (true)
        {
            try
            {
                first = await AcceptOwnerAsync(_stop.Token).ConfigureAwait(false);
                break;
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e) when (e.SocketErrorCode != SocketError.OperationAborted)
            {
                // A connection reset while queued, or no descriptor left for it (as Kestrel's own loop does: go on,
                // but not in a tight loop while the condition lasts).
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(100), _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
            catch (SocketException)
            {
                return;
            }
        }
        WebApplication? app = null;
        try
        {
            var clock = Stopwatch.GetTimestamp();
            app = build(new SocketTransport(this, first));
            var built = Stopwatch.GetElapsedTime(clock);
            await app.StartAsync(_stop.Token).ConfigureAwait(false);
            Volatile.Write(ref _app, app);
            ControlLog.WebHostStarted(_logger, built.TotalMilliseconds, (Stopwatch.GetElapsedTime(clock) - built).TotalMilliseconds);
        }
        catch (Exception e)
        {
            first.Dispose();
            if (app is not null)
            {
                await app.DisposeAsync().ConfigureAwait(false);
            }
            if (e is not OperationCanceledException)
            {
                // Nothing would ever answer: close the socket so clients are refused at once instead of hanging.
                ControlLog.StartFailed(_logger, SocketPath, e.Message);
                _listener.Dispose();
            }
        }
    }

    /// <summary>The next connection from this user; connections from anyone else are logged, counted and closed unread.</summary>
    private async Task<Socket> AcceptOwnerAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var socket = await _listener.AcceptAsync(cancellationToken).ConfigureAwait(false);
            if (!PeerCredentials.TryGet(socket, out var pid, out var uid))
            {
                ControlLog.NoCredentials(_logger);
            }
            else if (uid != _owner)
            {
                ControlLog.RefusedUid(_logger, uid, pid, _owner);
            }
            else
            {
                return socket;
            }
            Interlocked.Increment(ref _refused);
            // Closed at once, before a byte is read, as Kestrel's Abort() did.
            socket.Dispose();
        }
    }

    private static WebApplication BuildApp(string home, MeshNode node, SecureMeshDatabase db, NodeControlService service, GroupControlService groups,
        TransferControlService? transferControl, ControlServerOptions options, ILogger logger, IConnectionListenerFactory transport)
    {
        // The empty builder: no configuration sources (appsettings.json, environment, command line), no logging
        // providers, only Kestrel's HTTP/1.1 core and routing's core: everything here is set in code.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ContentRootPath = home });
        builder.WebHost.UseKestrelCore();
        builder.Services.AddRoutingCore();
        builder.Services.AddSingleton(options.LoggerFactory);
        // The node handles SIGINT/SIGTERM itself; the web host must not.
        builder.Services.AddSingleton<IHostLifetime, QuietLifetime>();
        // Kestrel serves the socket bound above (owner-checked connections only) instead of binding its own.
        builder.Services.RemoveAll<IConnectionListenerFactory>();
        builder.Services.AddSingleton(transport);
        builder.Services.AddSingleton(node);
        builder.Services.AddSingleton(db);
        builder.Services.AddSingleton(service);
        builder.Services.AddSingleton(groups);
        if (transferControl is not null)
        {
            builder.Services.AddSingleton(transferControl);
        }
        // ASP.NET Core's HTTP JSON settings (web defaults with the relaxed encoder: the answers' bytes) with the API's
        // naming and the source-generated contract only: no reflection resolver behind it, so a type missing from
        // ControlJsonContext fails in the tests instead of answering 500 in a Native AOT build.
        builder.Services.ConfigureHttpJsonOptions(o =>
        {
            o.SerializerOptions.PropertyNamingPolicy = JsonNamingPolicy.CamelCase;
            o.SerializerOptions.TypeInfoResolverChain.Clear();
            o.SerializerOptions.TypeInfoResolverChain.Add(ControlJsonContext.Default);
        });
        builder.Services.Configure<RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        var socketPath = SocketPathFor(home);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = 64 * 1024;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 * 1024;
            kestrel.Limits.KeepAliveTimeout = TimeSpan.FromSeconds(30);
            kestrel.Limits.RequestHeadersTimeout = TimeSpan.FromSeconds(5);
            kestrel.ListenUnixSocket(socketPath);
        });

        var app = builder.Build();
        app.Use(async (context, next) =>
        {
            try
            {
                await next(context);
            }
            catch (SecureMeshException e)
            {
                await WriteErrorAsync(context, logger, e.Kind, e.Message);
            }
            catch (BadHttpRequestException e)
            {
                await WriteErrorAsync(context, logger, SecureMeshErrorKind.InvalidInput, $"bad request: {e.Message}");
            }
            catch (JsonException e)
            {
                await WriteErrorAsync(context, logger, SecureMeshErrorKind.InvalidInput, $"bad JSON: {e.Message}");
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ControlLog.RequestFailed(logger, context.Request.Method, context.Request.Path, e.Message);
                if (!context.Response.HasStarted)
                {
                    context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                    await context.Response.WriteAsJsonAsync(new ErrorInfo($"internal error: {e.GetType().Name}", "internal"), ErrorJson, contentType: null, context.RequestAborted);
                }
            }
        });
        var v1 = app.MapGroup("/v1");
        StatusEndpoints.Map(v1);
        PeerEndpoints.Map(v1);
        BlockEndpoints.Map(v1);
        ConfigEndpoints.Map(v1);
        LogEndpoints.Map(v1);
        GroupEndpoints.Map(v1);
        if (options.Transfer is not null)
        {
            TransferEndpoints.Map(v1);
        }
        foreach (var group in options.EndpointGroups)
        {
            group(v1);
        }
        app.MapFallback(context => WriteErrorAsync(context, logger, SecureMeshErrorKind.NotFound, $"no such endpoint: {context.Request.Method} {context.Request.Path}"));

        return app;
    }

    /// <summary>The addresses served: the listening socket's (only <c>http://unix:…</c>), as Kestrel names them.</summary>
    internal IReadOnlyCollection<string> Addresses => _listener.LocalEndPoint switch
    {
        UnixDomainSocketEndPoint unix => [$"http://unix:{unix}"],
        IPEndPoint ip => [$"http://{ip}"],
        var other => [$"{other}"],
    };

    /// <summary>The HTTP status for an error kind.</summary>
    public static int StatusFor(SecureMeshErrorKind kind) => kind switch
    {
        SecureMeshErrorKind.InvalidInput => StatusCodes.Status400BadRequest,
        SecureMeshErrorKind.Unauthorized => StatusCodes.Status403Forbidden,
        SecureMeshErrorKind.NotFound => StatusCodes.Status404NotFound,
        SecureMeshErrorKind.Conflict => StatusCodes.Status409Conflict,
        SecureMeshErrorKind.WrongPassphrase or SecureMeshErrorKind.Identity => StatusCodes.Status422UnprocessableEntity,
        SecureMeshErrorKind.Network or SecureMeshErrorKind.Protocol => StatusCodes.Status502BadGateway,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>The wire name of an error kind (camelCase).</summary>
    public static string KindName(SecureMeshErrorKind kind) => JsonNamingPolicy.CamelCase.ConvertName(kind.ToString());

    private static async Task WriteErrorAsync(HttpContext context, ILogger logger, SecureMeshErrorKind kind, string message)
    {
        var status = StatusFor(kind);
        ControlLog.RequestRefused(logger, context.Request.Method, context.Request.Path, status, KindName(kind), message);
        if (context.Response.HasStarted)
        {
            return;
        }
        context.Response.Clear();
        context.Response.StatusCode = status;
        await context.Response.WriteAsJsonAsync(new ErrorInfo(message, KindName(kind)), ErrorJson, contentType: null, context.RequestAborted);
    }

    private static JsonSerializerOptions CreateJsonOptions()
    {
        // Only the source-generated contract: a type missing from ControlJsonContext throws NotSupportedException
        // (in every build) instead of being serialized by reflection in the JIT build and failing in the AOT one. No
        // record of the contract has an enum member (states and error kinds are strings), so no enum converter is needed.
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web)
        {
            PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
            TypeInfoResolver = ControlJsonContext.Default,
        };
        options.MakeReadOnly();
        return options;
    }

    /// <summary>Stops serving and removes the socket file.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        await _stop.CancelAsync().ConfigureAwait(false);
        await _serving.ConfigureAwait(false);
        if (Volatile.Read(ref _app) is { } app)
        {
            using (var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5)))
            {
                try
                {
                    await app.StopAsync(timeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            await app.DisposeAsync().ConfigureAwait(false);
        }
        _listener.Dispose();
        _stop.Dispose();
        try
        {
            File.Delete(SocketPath);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    /// <summary>
    /// Kestrel's transport: the socket bound at start, handing Kestrel the owner's first connection (the one that started
    /// the web host) and then each further connection from this user, as Kestrel's own socket transport would.
    /// </summary>
    private sealed class SocketTransport(ControlServer server, Socket first) : IConnectionListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default) =>
            ValueTask.FromResult<IConnectionListener>(new Listener(server, first, endpoint));

        private sealed class Listener(ControlServer server, Socket first, EndPoint endpoint) : IConnectionListener
        {
            private readonly SocketConnectionContextFactory _contexts = new(new SocketConnectionFactoryOptions(), NullLogger.Instance);
            private Socket? _first = first;

            public EndPoint EndPoint { get; } = endpoint;

            public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
            {
                if (Interlocked.Exchange(ref _first, null) is { } socket)
                {
                    return _contexts.Create(socket);
                }
                // Kestrel waits here without a token; the server's stop (or Kestrel's unbind) ends the wait.
                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, server._stop.Token);
                while (true)
                {
                    try
                    {
                        return _contexts.Create(await server.AcceptOwnerAsync(stop.Token).ConfigureAwait(false));
                    }
                    catch (ObjectDisposedException)
                    {
                        return null;
                    }
                    catch (OperationCanceledException)
                    {
                        return null;
                    }
                    catch (SocketException e) when (e.SocketErrorCode == SocketError.OperationAborted)
                    {
                        return null;
                    }
                    catch (SocketException)
                    {
                        // A connection that failed while queued (reset by its client): take the next one.
                    }
                }
            }

            // Kestrel unbinds when it stops: no further connections; the socket itself is closed by the server.
            public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
            {
                server._stop.Cancel();
                return ValueTask.CompletedTask;
            }

            public ValueTask DisposeAsync()
            {
                Interlocked.Exchange(ref _first, null)?.Dispose();
                _contexts.Dispose();
                return ValueTask.CompletedTask;
            }
        }
    }

    /// <summary>A host lifetime that leaves signals to the node.</summary>
    private sealed class QuietLifetime : IHostLifetime
    {
        public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
