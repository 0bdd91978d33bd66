# The processes of every-key.yaml as a Nomad job, written by `procman export --format nomad`.
# Check it with `nomad job validate every-key.nomad.hcl`; see the warnings the export printed.
job "every-key" {
  datacenters = ["*"]
  type        = "service"

  group "db" {
    count = 1

    network {
      port "db" {
        static = 5432
      }
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "db" {
      driver       = "raw_exec"
      user         = "nobody"
      kill_signal  = "SIGINT"
      kill_timeout = "30s"

      config {
        command  = "/usr/bin/env"
        args     = ["postgres", "-D", "/var/lib/postgres/data", "-c", "listen_addresses=*"]
        work_dir = "/var/lib/postgres"
      }

      env {
        PGDATA   = "/var/lib/postgres/data"
        GREETING = "it's \"quoted\" $HOME and 100%"
      }

      template {
        source      = "/etc/shop/db.env"
        destination = "secrets/env_file.env"
        env         = true
      }

      restart {
        attempts = 10
        interval = "600s"
        delay    = "2s"
        mode     = "fail"
      }

      resources {
        memory = 2048
      }

      logs {
        max_files     = 3
        max_file_size = 50
      }

      service {
        name     = "db"
        port     = "db"
        provider = "nomad"
        address  = "127.0.0.1"

        check {
          type     = "tcp"
          interval = "5s"
          timeout  = "2s"

          check_restart {
            limit = 5
            grace = "90s"
          }
        }
      }
    }
  }

  group "api" {
    count = 1

    network {
      port "api" {
        static = 8443
      }
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "migrate" {
      driver       = "docker"
      kill_timeout = "5s"

      lifecycle {
        hook    = "prestart"
        sidecar = false
      }

      config {
        image      = "registry.example/shop-migrate:2.0"
        entrypoint = ["/usr/bin/python3"]
        args       = ["-m", "shop.migrate", "--to", "latest"]
        work_dir   = "/srv/shop"
      }

      restart {
        attempts = 2
        interval = "600s"
        delay    = "1s"
        mode     = "fail"
      }
    }

    task "api" {
      driver       = "docker"
      kill_timeout = "10s"

      config {
        image      = "registry.example/shop-api:2.0"
        entrypoint = ["/srv/shop/bin/api"]
        args       = ["--listen", "0.0.0.0", "--port", "8443"]
        ports      = ["api"]
      }

      env {
        RUST_LOG     = "info"
        PROCMAN_PORT = "8443"
      }

      restart {
        attempts = 5
        interval = "600s"
        delay    = "1500ms"
        mode     = "fail"
      }

      resources {
        memory = 512
      }

      service {
        name     = "api"
        port     = "api"
        provider = "consul"

        check {
          type         = "grpc"
          grpc_service = "shop.Api"
          interval     = "10s"
          timeout      = "1s"

          check_restart {
            limit = 3
            grace = "60s"
          }
        }
      }
    }
  }

  group "web" {
    count = 1

    network {
      port "web" {
        static = 8080
      }
    }

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "web" {
      driver       = "raw_exec"
      kill_timeout = "10s"

      config {
        command  = "/usr/bin/python3"
        args     = ["-m", "http.server", "8080", "--bind", "127.0.0.1"]
        work_dir = "/srv/shop/static"
      }

      restart {
        attempts = 5
        interval = "600s"
        delay    = "1s"
        mode     = "fail"
      }

      service {
        name     = "web"
        port     = "web"
        provider = "nomad"
        address  = "127.0.0.1"

        check {
          type     = "http"
          path     = "/healthz"
          interval = "15s"
          timeout  = "3s"

          check_restart {
            limit = 3
            grace = "60s"
          }
        }
      }
    }
  }

  group "reporter" {
    count = 1

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "reporter" {
      driver       = "raw_exec"
      kill_timeout = "10s"

      config {
        command = "/bin/sh"
        args    = ["-c", "while sleep 60; do date; done"]
      }

      restart {
        attempts = 0
        interval = "600s"
        delay    = "1s"
        mode     = "fail"
      }

      service {
        name     = "reporter"
        provider = "consul"

        check {
          type     = "script"
          command  = "/bin/sh"
          args     = ["-c", "test -d /proc/self"]
          interval = "60s"
          timeout  = "1s"
        }
      }
    }
  }

  group "legacy" {
    # enabled: false in the config: `nomad job scale` starts it
    count = 0

    reschedule {
      attempts  = 0
      unlimited = false
    }

    task "legacy" {
      driver       = "raw_exec"
      kill_timeout = "10s"

      config {
        command = "/usr/bin/sleep"
        args    = ["infinity"]
      }

      restart {
        attempts = 5
        interval = "600s"
        delay    = "1s"
        mode     = "fail"
      }
    }
  }
}
